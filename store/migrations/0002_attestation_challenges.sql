-- Open TPM attestation challenges (issue 25): taken once, by whichever
-- replica the device answers, with one DELETE ... RETURNING. The id is a
-- digest of the challenge's id; the record holds a digest of its secret.
CREATE TABLE attestation_challenges (
    id BYTEA PRIMARY KEY,
    record BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX attestation_challenges_expiry ON attestation_challenges (expires_at);
