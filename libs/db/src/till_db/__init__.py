"""Database plumbing shared by the services that own a database (auth, tools).

Kept apart from till_common so that the gateway, which has no database, never imports SQLAlchemy.
"""
