-- name: insert_assistant
INSERT INTO assistant (assistant_id, graph_id, name, description, config, context, metadata)
VALUES (%(assistant_id)s, %(graph_id)s, %(name)s, %(description)s, %(config)s, %(context)s,
        %(metadata)s)
ON CONFLICT (assistant_id) DO NOTHING
RETURNING *;

-- name: insert_assistant_version
INSERT INTO assistant_version (assistant_id, version, graph_id, name, description, config,
                               context, metadata)
VALUES (%(assistant_id)s, %(version)s, %(graph_id)s, %(name)s, %(description)s, %(config)s,
        %(context)s, %(metadata)s)
ON CONFLICT DO NOTHING;

-- name: get_assistant
SELECT * FROM assistant WHERE assistant_id = %(assistant_id)s;

-- name: lock_assistant
SELECT * FROM assistant WHERE assistant_id = %(assistant_id)s FOR UPDATE;

-- name: max_assistant_version
SELECT coalesce(max(version), 0) AS v FROM assistant_version
WHERE assistant_id = %(assistant_id)s;

-- name: update_assistant
UPDATE assistant
SET graph_id = %(graph_id)s, name = %(name)s, description = %(description)s,
    config = %(config)s, context = %(context)s, metadata = %(metadata)s,
    version = %(version)s, updated_at = clock_timestamp()
WHERE assistant_id = %(assistant_id)s
RETURNING *;

-- name: get_assistant_version
SELECT * FROM assistant_version
WHERE assistant_id = %(assistant_id)s AND version = %(version)s;

-- name: list_assistant_versions
SELECT * FROM assistant_version
WHERE assistant_id = %(assistant_id)s AND metadata @> %(metadata)s
ORDER BY version DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: threads_of_assistant
SELECT thread_id FROM thread
WHERE metadata ->> 'assistant_id' = %(assistant_id)s AND status <> 'busy' AND NOT temporary;

-- name: delete_assistant
DELETE FROM assistant WHERE assistant_id = %(assistant_id)s RETURNING assistant_id;
