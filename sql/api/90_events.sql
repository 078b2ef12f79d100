-- strapontin API, events: events to subscribers.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

-- Every daemon learns at once that a session ended (logout, password
-- change, disabled user), so it stops sending events to that connection.
CREATE OR REPLACE FUNCTION core.tokens_revoked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('strapontin_events', jsonb_build_object(
        'topic', 'session.revoked', 'token_hash', NEW.token_hash)::text);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER tokens_revoked AFTER UPDATE OF revoked_at ON tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION core.tokens_revoked();

CREATE OR REPLACE FUNCTION api.events_subscribe(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('topics', p->'topics', 'user_id', (auth_user(p_token)).id)
$$;

-- Events for subscribers (docs/protocol.md, events.subscribe), sent at commit to every
-- daemon through LISTEN/NOTIFY; partner_id and structure_id let each daemon
-- show an event only to whom may see its object.
CREATE OR REPLACE FUNCTION core.emit(p_topic text, p_partner_id bigint, p_structure_id bigint,
                     p_data jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    -- free text stays out of events: NOTIFY payloads stop at 8000 bytes
    d jsonb := p_data - 'description' - 'accessibility';
    msg text := jsonb_build_object('topic', p_topic, 'partner_id', p_partner_id,
                                   'structure_id', p_structure_id, 'data', d)::text;
BEGIN
    IF octet_length(msg) > 7900 THEN
        msg := jsonb_build_object('topic', p_topic, 'partner_id', p_partner_id,
                                  'structure_id', p_structure_id,
                                  'data', jsonb_build_object('id', d->'id',
                                                             'truncated', true))::text;
    END IF;
    PERFORM pg_notify('strapontin_events', msg);
END $$;

CREATE OR REPLACE FUNCTION core.emit_seats_changed(p_offer_id bigint) RETURNS void
LANGUAGE sql AS $$
    SELECT emit('offer.seats_changed', o.partner_id, NULL, offer_json(o))
      FROM offers o WHERE o.id = p_offer_id;
$$;
