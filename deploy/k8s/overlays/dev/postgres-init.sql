-- Run once by the postgres image on an empty data volume: auth and tools own separate databases
-- (docs/decisions.md D4). The owner is POSTGRES_USER (`till`), who connects as the services do.
CREATE DATABASE till_auth OWNER till;
CREATE DATABASE till_tools OWNER till;
