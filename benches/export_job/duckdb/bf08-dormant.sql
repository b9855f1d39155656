-- last(AppLaunch) before 30d ago
SELECT i.installation_id AS "installationId", i.push_registration_id AS "pushRegistrationId",
       i.platform AS "platform", p.external_user_id AS "externalUserId"
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE i.push_registration_enabled AND i.state <> 'uninstalled'  -- the push channel
  AND i.person_id IN (
    SELECT person_id FROM event_AppLaunch
    WHERE event_time < TIMESTAMP '{as_of}'
    GROUP BY person_id
    HAVING max(event_time) < TIMESTAMP '{as_of}' - INTERVAL '30 days')
