-- platform = "iOS" and appVersion < "5.10" and count(AppLaunch within 30d) >= 1
SELECT i.installation_id AS "installationId", i.push_registration_id AS "pushRegistrationId",
       i.platform AS "platform", p.external_user_id AS "externalUserId"
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE i.push_registration_enabled AND i.state <> 'uninstalled'  -- the push channel
  AND i.platform = 'iOS'
  -- version order, part by part; a missing version matches no comparison
  AND i.application_version IS NOT NULL
  AND (coalesce(TRY_CAST(split_part(i.application_version, '.', 1) AS BIGINT), 0) < 5
       OR (coalesce(TRY_CAST(split_part(i.application_version, '.', 1) AS BIGINT), 0) = 5
           AND coalesce(TRY_CAST(split_part(i.application_version, '.', 2) AS BIGINT), 0) < 10))
  AND EXISTS (SELECT 1 FROM event_AppLaunch a
              WHERE a.person_id = i.person_id
                AND a.event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
                AND a.event_time < TIMESTAMP '{as_of}' AND a.{period} >= {period_from:30d})
