-- installedAt within 30d and not did(Purchase)
SELECT i.installation_id AS "installationId", i.push_registration_id AS "pushRegistrationId",
       i.platform AS "platform", p.external_user_id AS "externalUserId"
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE i.push_registration_enabled AND i.state <> 'uninstalled'  -- the push channel
  AND i.installed_at >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
  AND i.installed_at <= TIMESTAMP '{as_of}'
  AND NOT EXISTS (SELECT 1 FROM event_Purchase b
                  WHERE b.person_id = i.person_id AND b.event_time < TIMESTAMP '{as_of}')
