-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 28: one person followed by several structures
-- (docs/privacy.md, "One person, several structures").
--
-- With the person's consent, a referent gives their last name, first name
-- and birth date; the daemon turns them into an HMAC-SHA256 under a secret
-- of its configuration ([privacy] identity_secret_file) and only the HMAC
-- reaches the database. Records with the same key are one person for the
-- caps, the fairness score, the waiting lists and the one live booking per
-- offer, whatever structure follows them; no structure ever reads another
-- structure's record through it.
ALTER TABLE beneficiaries
    -- the 32 bytes of the HMAC; NULL: no key recorded
    ADD COLUMN identity_key bytea CHECK (octet_length(identity_key) = 32),
    -- which secret made it: the first 8 bytes of SHA-256 of the secret,
    -- in hex (so rotation can tell the keys still to be re-made)
    ADD COLUMN identity_secret_id text CHECK (identity_secret_id ~ '^[0-9a-f]{16}$'),
    ADD COLUMN identity_set_at timestamptz,
    ADD CONSTRAINT beneficiaries_identity_whole
        CHECK ((identity_key IS NULL) = (identity_secret_id IS NULL)
               AND (identity_key IS NULL) = (identity_set_at IS NULL)),
    -- an erased person keeps no key (docs/privacy.md)
    ADD CONSTRAINT beneficiaries_erased_no_identity
        CHECK (erased_at IS NULL OR identity_key IS NULL);

-- The other records of a person, found from one of them. Not partial: the
-- draw finds them by a join on the key, which a partial index on "IS NOT
-- NULL" would not serve.
CREATE INDEX beneficiaries_identity ON beneficiaries (identity_key);
-- A structure follows a person once: two of its own records with one key
-- are a duplicate it must merge (it sees both already).
CREATE UNIQUE INDEX beneficiaries_identity_once ON beneficiaries (structure_id, identity_key)
    WHERE identity_key IS NOT NULL;
