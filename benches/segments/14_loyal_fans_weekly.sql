SELECT count(*) AS n
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE p.custom_favorite_team IN ('Dinamo', 'Hajduk', 'Rijeka', 'Osijek')
  AND p.custom_loyalty_points >= 500
  AND i.primary_device
  AND EXISTS (
    SELECT 1 FROM event_AppLaunch a
    WHERE a.person_id = i.person_id
      AND a.event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days'
      AND a.event_time < TIMESTAMP '{as_of}'
      AND a.{period} >= {period_from:7d})
