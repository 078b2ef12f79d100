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

-- events.subscribe also answers the outbox's last id: rows up to it are
-- older than the subscription and not sent to it (daemon/events.c).
CREATE OR REPLACE FUNCTION api.events_subscribe(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object('topics', p->'topics', 'user_id', (auth_user(p_token)).id,
            'events_after', (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
                               FROM event_outbox_id_seq)));
END $$;

-- Events for subscribers (docs/protocol.md, events.subscribe): one row of
-- the outbox, committed with the change; partner_id and structure_id let
-- each daemon show an event only to whom may see its object. Free text
-- stays out of events, as when they were NOTIFY payloads.
CREATE OR REPLACE FUNCTION core.emit(p_topic text, p_partner_id bigint,
                                p_structure_id bigint, p_data jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- The transaction's xid before the row's id: the fences of
    -- events_read() rely on it. Every caller has written already, so
    -- this only reads the xid it has.
    PERFORM pg_current_xact_id();
    INSERT INTO event_outbox (topic, partner_id, structure_id, data, audience)
    VALUES (p_topic, p_partner_id, p_structure_id,
            p_data - 'description' - 'accessibility',
            -- an offer kept for its targets: only they hear of it
            -- (docs/booking-rules.md, "Targeted offers"); qualified, as
            -- tests call emit() from a session whose path lacks core
            CASE WHEN p_topic LIKE 'offer.%'
                      AND (p_data->>'open_to_all')::boolean IS FALSE
                 THEN (SELECT core.offer_audience(x) FROM offers x
                        WHERE x.id = (p_data->>'id')::bigint) END);
END $$;

-- PL/pgSQL: its query planned once a session, not at every call as a
-- VOLATILE SQL function's would be (claims and the draw call it per offer).
CREATE OR REPLACE FUNCTION core.emit_seats_changed(p_offer_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM emit('offer.seats_changed', o.partner_id, NULL, offer_json(o))
       FROM offers o WHERE o.id = p_offer_id;
END $$;

-- One read of the outbox by a daemon (daemon/events.c). p_after is the
-- reader's position (NULL: start at the end, no backlog), p_settled the
-- highest id it knows final, (p_fence_id, p_fence_xid) the fence it waits
-- on (NULL: none). Returns the new settled id and fence, the highest id
-- pruned, the last id handed out (whether committed or not), and the rows
-- after p_after up to the settled id (at most p_limit, in id order) as a
-- JSON array.
--
-- Run it under READ COMMITTED (the default): each statement below must
-- see a new snapshot.
CREATE OR REPLACE FUNCTION api.events_read(p_after bigint, p_settled bigint,
                            p_fence_id bigint, p_fence_xid xid8,
                            p_limit integer,
                            OUT r_settled bigint, OUT r_fence_id bigint,
                            OUT r_fence_xid xid8, OUT r_pruned bigint,
                            OUT r_last bigint, OUT r_events jsonb)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
      INTO r_last FROM event_outbox_id_seq;
    IF p_after IS NULL THEN
        -- Rows of transactions running now, below r_last, are not
        -- delivered: nobody can have subscribed to this daemon yet.
        r_settled := r_last;
        SELECT upto INTO r_pruned FROM event_outbox_pruned;
        r_events := '[]';
        RETURN;
    END IF;
    r_settled := coalesce(p_settled, 0);
    r_fence_id := p_fence_id;
    r_fence_xid := p_fence_xid;
    IF r_fence_xid IS NOT NULL AND
       r_fence_xid <= pg_snapshot_xmin(pg_current_snapshot()) THEN
        r_settled := greatest(r_settled, r_fence_id);
        r_fence_xid := NULL;
    END IF;
    -- A new fence only once the last one settled (under steady writes a
    -- newer one would keep moving away), and only when ids were handed
    -- out past the settled one: taking one costs an xid.
    IF r_fence_xid IS NULL AND r_last > r_settled THEN
        r_fence_id := r_last;
        -- An xid assigned now, after reading r_last, is above that of
        -- every transaction that had taken an id up to r_last. (A
        -- snapshot's xmax would not do: it is the last xid to end plus
        -- one, and a running transaction with a newer xid is in no
        -- snapshot's list until one newer than it ends.)
        r_fence_xid := pg_current_xact_id();
        -- Only this reader may be running below it: then it settled.
        IF r_fence_xid <= pg_snapshot_xmin(pg_current_snapshot()) THEN
            r_settled := r_fence_id;
            r_fence_xid := NULL;
        END IF;
    END IF;
    -- The rows and the pruning mark in one snapshot: a row pruned before
    -- it is counted in the mark.
    SELECT (SELECT upto FROM event_outbox_pruned),
           coalesce(jsonb_agg(jsonb_build_object('id', e.id,
                    'topic', e.topic, 'partner_id', e.partner_id,
                    'structure_id', e.structure_id, 'audience', e.audience,
                    'data', e.data)
                    ORDER BY e.id), '[]')
      INTO r_pruned, r_events
      FROM (SELECT * FROM event_outbox
             WHERE id > p_after AND id <= r_settled
             ORDER BY id LIMIT greatest(p_limit, 0)) e;
END $$;

-- Deletes rows older than p_keep and records the highest id deleted.
-- Returns how many. Rows of transactions still running are not seen, so
-- not deleted, and are read once they commit.
CREATE OR REPLACE FUNCTION api.events_prune(p_keep interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := clock_timestamp() - p_keep;
    first_kept bigint;
    n integer;
    top bigint;
BEGIN
    -- Walks the primary key from the oldest row: created_at grows with id.
    SELECT id INTO first_kept FROM event_outbox
     WHERE created_at >= cutoff ORDER BY id LIMIT 1;
    WITH d AS (
        DELETE FROM event_outbox
         WHERE (first_kept IS NULL OR id < first_kept) AND created_at < cutoff
        RETURNING id)
    SELECT count(*), max(id) INTO n, top FROM d;
    IF top IS NOT NULL THEN
        UPDATE event_outbox_pruned SET upto = greatest(upto, top);
    END IF;
    RETURN n;
END $$;
