-- Identity: the keys access tokens are signed with (the newest signs, every one verifies, so a
-- key can be rotated without logging everyone out), refresh tokens (only their SHA-256 is
-- stored; a session is one login's chain of refresh tokens) and revoked access tokens and
-- sessions (kept until the token would have expired anyway). Times are epoch seconds.
CREATE TABLE identity_signing_keys (
    kid         TEXT   PRIMARY KEY,
    secret      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE identity_refresh_tokens (
    token_hash  TEXT   PRIMARY KEY,
    username    TEXT   NOT NULL,
    session     TEXT   NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX identity_refresh_tokens_session ON identity_refresh_tokens (session);
CREATE INDEX identity_refresh_tokens_username ON identity_refresh_tokens (username);

CREATE TABLE identity_revocations (
    token_id    TEXT   PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
