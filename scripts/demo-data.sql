-- Demo data from the field, loaded by scripts/demo into a fresh database.
-- Everything goes through the API's own SQL functions (scope checks, caps,
-- audit, events), called with a short-lived token of the first admin.
-- Every demo account's password is "strapontin-demo": for the demo only.
\set ON_ERROR_STOP 1
\o /dev/null
BEGIN;

CREATE TEMP TABLE demo_token AS
    SELECT encode(sha256(gen_random_uuid()::text::bytea), 'hex') AS tok;
INSERT INTO tokens (token_hash, user_id, expires_at)
    SELECT tok, (SELECT id FROM users WHERE role = 'admin' ORDER BY id LIMIT 1),
           now() + interval '10 minutes'
      FROM demo_token;

-- api('offer_publish', '{...}') calls the method's function as the admin.
CREATE FUNCTION pg_temp.api(fn text, p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE r jsonb;
BEGIN
    EXECUTE format('SELECT api.%I($1, $2, $3, $4)', fn)
       INTO r USING (SELECT tok FROM demo_token), p, 'demo-data', '{}'::jsonb;
    RETURN r;
END $$;
CREATE FUNCTION pg_temp.id(fn text, p jsonb) RETURNS bigint
LANGUAGE sql AS $$ SELECT (pg_temp.api(fn, p)->>'id')::bigint $$;
-- A local time in Paris, N days from today, as RFC 3339 UTC.
CREATE FUNCTION pg_temp.at(days integer, hhmm text) RETURNS text
LANGUAGE sql AS $$
    SELECT to_char(((current_date + days) + hhmm::time) AT TIME ZONE core.report_zone()
                   AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Cultural partners.
SELECT pg_temp.id('partner_create', '{"name": "Musée départemental de la Céramique", "kind": "museum", "city": "Lezoux"}') AS lezoux \gset
SELECT pg_temp.id('partner_create', '{"name": "Domaine royal de Randan", "kind": "heritage", "city": "Randan"}') AS randan \gset
SELECT pg_temp.id('partner_create', '{"name": "Les Automnales, festival du Puy-de-Dôme", "kind": "festival", "city": "Clermont-Ferrand"}') AS festival \gset
SELECT pg_temp.id('partner_create', '{"name": "Cinéma Le Rex", "kind": "cinema", "city": "Brive-la-Gaillarde"}') AS cinema \gset
SELECT pg_temp.id('partner_create', '{"name": "Union sportive de Billom", "kind": "sport", "city": "Billom"}') AS club \gset

-- Social structures.
SELECT pg_temp.id('structure_create', '{"name": "Maison des Solidarités de Billom", "kind": "mds", "territory": "Puy-de-Dôme", "city": "Billom"}') AS mds_billom \gset
SELECT pg_temp.id('structure_create', '{"name": "Centre social du centre-ville", "kind": "centre_social", "territory": "Savoie", "city": "Chambéry"}') AS cs_chambery \gset
SELECT pg_temp.id('structure_create', '{"name": "Habitat et Humanisme Auvergne", "kind": "housing", "territory": "Puy-de-Dôme", "city": "Clermont-Ferrand"}') AS hh_auvergne \gset
SELECT pg_temp.id('structure_create', '{"name": "Maison du Département du Montreuillois", "kind": "mds", "territory": "Pas-de-Calais", "city": "Montreuil-sur-Mer"}') AS mdd_montreuil \gset
SELECT pg_temp.id('structure_create', '{"name": "CCAS de Brive", "kind": "ccas", "territory": "Corrèze", "city": "Brive-la-Gaillarde"}') AS ccas_brive \gset

-- Accounts (password "strapontin-demo").
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'accueil@musee-ceramique.example', 'display_name', 'Accueil du musée', 'role', 'partner', 'partner_id', :lezoux, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'billetterie@domaine-randan.example', 'display_name', 'Billetterie du Domaine', 'role', 'partner', 'partner_id', :randan, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'billetterie@automnales.example', 'display_name', 'Billetterie des Automnales', 'role', 'partner', 'partner_id', :festival, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'caisse@cinema-rex.example', 'display_name', 'Caisse du Rex', 'role', 'partner', 'partner_id', :cinema, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'secretariat@us-billom.example', 'display_name', 'Secrétariat de l''USB', 'role', 'partner', 'partner_id', :club, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'claire.martin@mds-billom.example', 'display_name', 'Claire Martin (MDS Billom)', 'role', 'referent', 'structure_id', :mds_billom, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'paul.roche@cs-chambery.example', 'display_name', 'Paul Roche (centre social)', 'role', 'referent', 'structure_id', :cs_chambery, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'ines.haddad@hh-auvergne.example', 'display_name', 'Inès Haddad (Habitat et Humanisme)', 'role', 'referent', 'structure_id', :hh_auvergne, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'julie.lefebvre@mdd-montreuillois.example', 'display_name', 'Julie Lefebvre (MDD Montreuillois)', 'role', 'referent', 'structure_id', :mdd_montreuil, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));
SELECT pg_temp.api('user_create', jsonb_build_object('email', 'marc.delmas@ccas-brive.example', 'display_name', 'Marc Delmas (CCAS de Brive)', 'role', 'referent', 'structure_id', :ccas_brive, 'password_hash', '$scrypt$ln=15,r=8,p=1$aIUD3p32NOvMeRDEeTq9dg$CRI82VN5JcSUSWpSQBUWLWO47IPXBMW/Wp40b//gXek'));

-- Offers over the coming months.
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :lezoux, 'title', 'Visite guidée : les potiers gallo-romains', 'category', 'museum', 'venue', 'Musée départemental de la Céramique', 'city', 'Lezoux', 'starts_at', pg_temp.at(9, '14:30'), 'ends_at', pg_temp.at(9, '16:00'), 'seats', 12, 'max_per_booking', 4, 'accessibility', 'Accessible en fauteuil ; sièges pliants prêtés')) AS o_visite \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :lezoux, 'title', 'Atelier modelage en famille', 'category', 'workshop', 'venue', 'Musée départemental de la Céramique', 'city', 'Lezoux', 'starts_at', pg_temp.at(23, '10:00'), 'seats', 8, 'max_per_booking', 3, 'description', 'Deux heures pour façonner un bol, cuit et rendu un mois plus tard.')) AS o_atelier \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :randan, 'title', 'Le Domaine royal aux chandelles', 'category', 'heritage', 'venue', 'Domaine royal de Randan', 'city', 'Randan', 'starts_at', pg_temp.at(16, '19:30'), 'seats', 20, 'max_per_booking', 4, 'delivery', 'pickup')) AS o_randan \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :randan, 'title', 'Promenade commentée du parc', 'category', 'heritage', 'venue', 'Domaine royal de Randan', 'city', 'Randan', 'starts_at', pg_temp.at(44, '15:00'), 'seats', 15, 'max_per_booking', 4)) AS o_parc \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :festival, 'title', 'Concert d''ouverture des Automnales', 'category', 'concert', 'venue', 'Opéra-Théâtre', 'city', 'Clermont-Ferrand', 'starts_at', pg_temp.at(12, '20:30'), 'seats', 6, 'max_per_booking', 2)) AS o_concert \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :festival, 'title', 'Théâtre : Le Malade imaginaire', 'category', 'show', 'venue', 'Salle Jean-Cocteau', 'city', 'Thiers', 'starts_at', pg_temp.at(30, '20:00'), 'seats', 10, 'max_per_booking', 2)) AS o_theatre \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :cinema, 'title', 'Ciné-goûter : film d''animation', 'category', 'cinema', 'venue', 'Cinéma Le Rex, salle 2', 'city', 'Brive-la-Gaillarde', 'starts_at', pg_temp.at(6, '15:00'), 'seats', 25, 'max_per_booking', 4)) AS o_cine \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :cinema, 'title', 'Soirée ciné-débat', 'category', 'cinema', 'venue', 'Cinéma Le Rex, salle 1', 'city', 'Brive-la-Gaillarde', 'starts_at', pg_temp.at(37, '20:30'), 'seats', 15, 'max_per_booking', 2)) AS o_debat \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :club, 'title', 'Match de rugby : USB contre Issoire', 'category', 'sport', 'venue', 'Stade municipal', 'city', 'Billom', 'starts_at', pg_temp.at(19, '15:00'), 'seats', 30, 'max_per_booking', 4, 'delivery', 'guest_list')) AS o_match \gset
SELECT pg_temp.id('offer_publish', jsonb_build_object('partner_id', :club, 'title', 'Initiation rugby à toucher', 'category', 'sport', 'venue', 'Stade municipal', 'city', 'Billom', 'starts_at', pg_temp.at(51, '10:00'), 'seats', 12, 'max_per_booking', 3)) AS o_initiation \gset

-- People followed (invented), with their consent.
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :mds_billom, 'first_name', 'Marie', 'last_name', 'Dupuis', 'birth_year', 1957, 'household_size', 1, 'postal_code', '63160', 'consent', true)) AS b_marie \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :mds_billom, 'first_name', 'Karim', 'last_name', 'Benali', 'birth_year', 1984, 'household_size', 4, 'postal_code', '63160', 'consent', true)) AS b_karim \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :mds_billom, 'first_name', 'Jeanne', 'last_name', 'Vidal', 'birth_year', 1941, 'household_size', 1, 'postal_code', '63190', 'consent', true)) AS b_jeanne \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :cs_chambery, 'first_name', 'Lucas', 'last_name', 'Morel', 'birth_year', 1999, 'household_size', 1, 'postal_code', '73000', 'consent', true)) AS b_lucas \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :cs_chambery, 'first_name', 'Aïcha', 'last_name', 'Traoré', 'birth_year', 1979, 'household_size', 3, 'postal_code', '73000', 'consent', true)) AS b_aicha \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :hh_auvergne, 'first_name', 'Sylvie', 'last_name', 'Giraud', 'birth_year', 1966, 'household_size', 2, 'postal_code', '63000', 'consent', true)) AS b_sylvie \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :mdd_montreuil, 'first_name', 'Kevin', 'last_name', 'Lemaire', 'birth_year', 1990, 'household_size', 5, 'postal_code', '62170', 'consent', true)) AS b_kevin \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :ccas_brive, 'first_name', 'Rose', 'last_name', 'Fabre', 'birth_year', 1952, 'household_size', 1, 'postal_code', '19100', 'consent', true)) AS b_rose \gset
SELECT pg_temp.id('beneficiary_create', jsonb_build_object('structure_id', :ccas_brive, 'first_name', 'Thomas', 'last_name', 'Roux', 'birth_year', 2001, 'household_size', 2, 'postal_code', '19100', 'consent', true)) AS b_thomas \gset

-- A few bookings already made.
SELECT pg_temp.api('booking_create', jsonb_build_object('offer_id', :o_visite, 'beneficiary_id', :b_marie, 'seats', 1));
SELECT pg_temp.api('booking_create', jsonb_build_object('offer_id', :o_match, 'beneficiary_id', :b_karim, 'seats', 4));
SELECT pg_temp.api('booking_create', jsonb_build_object('offer_id', :o_concert, 'beneficiary_id', :b_sylvie, 'seats', 2));
SELECT pg_temp.api('booking_create', jsonb_build_object('offer_id', :o_cine, 'beneficiary_id', :b_rose, 'seats', 1));
SELECT pg_temp.api('booking_create', jsonb_build_object('offer_id', :o_cine, 'beneficiary_id', :b_thomas, 'seats', 2));
SELECT pg_temp.api('booking_create', jsonb_build_object('offer_id', :o_randan, 'beneficiary_id', :b_aicha, 'seats', 3));

-- "Et si on sortait ?": the MDS of Billom's permanence, every 3rd Tuesday
-- 10:00-12:00, for a year; four seats of the park walk set aside for the
-- next one.
SELECT pg_temp.api('permanence_schedule_series', jsonb_build_object('structure_id', :mds_billom, 'weekday', 'tuesday', 'nth', 3, 'start_time', '10:00', 'end_time', '12:00', 'from_date', to_char(current_date, 'YYYY-MM-DD'), 'count', 12, 'title', 'Et si on sortait ?', 'location', 'MDS de Billom, salle d''accueil'))->'items'->0->>'id' AS perm \gset
SELECT pg_temp.api('permanence_reserve_block', jsonb_build_object('permanence_id', :perm, 'offer_id', :o_parc, 'seats', 4));

DELETE FROM tokens WHERE token_hash = (SELECT tok FROM demo_token);
COMMIT;
