-- The generated key sensitive fields are sealed with when no keys are configured
-- (TRIBUTARY_FIELD_KEYS), and each user's SCRAM-SHA-256 secret for the SQL wire endpoint:
-- the salted password sealed with a field key, and which password hash it was derived from
-- (a secret of an older password is not used). Times are epoch seconds.
CREATE TABLE field_keys (
    id          TEXT   PRIMARY KEY,
    key         TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE identity_scram_secrets (
    username       TEXT   PRIMARY KEY,
    salt           TEXT   NOT NULL,
    salted         TEXT   NOT NULL,
    password_ref   TEXT   NOT NULL,
    updated_at     BIGINT NOT NULL
);
