-- A SQL hook (see docs/hooks.md): runs in the restored copy (:'database' is the
-- temporary database) before it replaces the live one. Refusing here keeps the
-- live database exactly as it was.
DO $check$
BEGIN
  IF to_regclass('public.artists') IS NULL OR to_regclass('public.videos') IS NULL THEN
    RAISE EXCEPTION 'the restored copy has no artists/videos tables: not swapping it in';
  END IF;
END
$check$;
SELECT 'restored copy ' || :'database' || ': ' || (SELECT count(*) FROM artists) || ' artists, '
       || (SELECT count(*) FROM videos) || ' videos';
