"""The compose topology as plain local processes (``make cluster``); also a test fixture."""

from deploy.cluster.runner import Cluster, ClusterConfig, ClusterUnavailable, find_nginx, service_environ

__all__ = ["Cluster", "ClusterConfig", "ClusterUnavailable", "find_nginx", "service_environ"]
