-- trustca store, schema version 1. Records are kept in their postcard
-- encoding (`record`), the columns beside them are what the database must
-- index or keep unique. Plain SQL types only, so PostgreSQL-compatible
-- distributed engines accept it too.

CREATE TABLE certificates (
    serial       BYTEA PRIMARY KEY,
    fingerprint  BYTEA NOT NULL UNIQUE,
    sector       TEXT NOT NULL,
    identity_key TEXT,
    record       BYTEA NOT NULL
);

CREATE TABLE devices (
    identity_key TEXT PRIMARY KEY,
    record       BYTEA NOT NULL
);

CREATE TABLE trust_records (
    identity_key TEXT PRIMARY KEY,
    record       BYTEA NOT NULL
);

CREATE TABLE history (
    identity_key TEXT NOT NULL,
    version      BIGINT NOT NULL,
    record       BYTEA NOT NULL,
    PRIMARY KEY (identity_key, version)
);

CREATE TABLE audit_log (
    seq    BIGINT PRIMARY KEY,
    record BYTEA NOT NULL
);

CREATE TABLE tree_heads (
    size BIGINT PRIMARY KEY,
    head BYTEA NOT NULL
);

CREATE TABLE revoked (
    sector TEXT NOT NULL,
    serial BYTEA NOT NULL,
    at     BIGINT NOT NULL,
    reason SMALLINT NOT NULL,
    PRIMARY KEY (sector, serial)
);

CREATE TABLE blocked_keys (
    fingerprint BYTEA PRIMARY KEY,
    record      BYTEA NOT NULL
);

CREATE TABLE blobs (
    space TEXT NOT NULL,
    key   BYTEA NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (space, key)
);

-- Counters and the audit log's Merkle frontier (key 'audit.frontier').
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- CRL and PRL numbers: assigned by the database, never reused.
CREATE TABLE crl_numbers (
    sector TEXT PRIMARY KEY,
    number BIGINT NOT NULL
);

-- Once-per-deployment work (tree heads, scheduled CRLs): one holder at a time.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
