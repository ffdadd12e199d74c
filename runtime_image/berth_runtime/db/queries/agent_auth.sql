-- Agent Auth: tokens per (user, provider) and consent flows. See berth_runtime/agent_auth.

-- name: agent_auth_get_token
SELECT user_id, provider, scopes, access_token, refresh_token, expires_at, created_at, updated_at
FROM agent_auth_token
WHERE user_id = %(user_id)s AND provider = %(provider)s;

-- name: agent_auth_lock_token
SELECT user_id, provider, scopes, access_token, refresh_token, expires_at
FROM agent_auth_token
WHERE user_id = %(user_id)s AND provider = %(provider)s
FOR UPDATE;

-- name: agent_auth_put_token
INSERT INTO agent_auth_token (user_id, provider, scopes, access_token, refresh_token, expires_at)
VALUES (%(user_id)s, %(provider)s, %(scopes)s, %(access_token)s, %(refresh_token)s,
        %(expires_at)s)
ON CONFLICT (user_id, provider) DO UPDATE
SET scopes = EXCLUDED.scopes,
    access_token = EXCLUDED.access_token,
    refresh_token = EXCLUDED.refresh_token,
    expires_at = EXCLUDED.expires_at,
    updated_at = now();

-- name: agent_auth_list_tokens
SELECT provider, scopes, expires_at, created_at, updated_at, refresh_token IS NOT NULL AS refreshable
FROM agent_auth_token
WHERE user_id = %(user_id)s
ORDER BY provider;

-- name: agent_auth_delete_token
DELETE FROM agent_auth_token
WHERE user_id = %(user_id)s AND provider = %(provider)s
RETURNING access_token, refresh_token;

-- name: agent_auth_all_tokens
SELECT user_id, provider, access_token, refresh_token FROM agent_auth_token FOR UPDATE;

-- name: agent_auth_reseal_token
UPDATE agent_auth_token
SET access_token = %(access_token)s, refresh_token = %(refresh_token)s
WHERE user_id = %(user_id)s AND provider = %(provider)s;

-- name: agent_auth_insert_flow
INSERT INTO agent_auth_flow (auth_id, user_id, provider, scopes, code_verifier, auth_url,
                             thread_id, run_id, assistant_id, expires_at)
VALUES (%(auth_id)s, %(user_id)s, %(provider)s, %(scopes)s, %(code_verifier)s, %(auth_url)s,
        %(thread_id)s, %(run_id)s, %(assistant_id)s,
        now() + make_interval(secs => %(ttl_seconds)s));

-- name: agent_auth_get_flow
SELECT auth_id, user_id, provider, scopes, code_verifier, auth_url, thread_id, run_id,
       assistant_id, status, error, created_at, expires_at, completed_at,
       expires_at <= now() AS expired
FROM agent_auth_flow
WHERE auth_id = %(auth_id)s;

-- name: agent_auth_pending_flow
-- A consent flow of this user and provider still open, covering these scopes, for reuse
-- when a tool asks again before the user consented (a retried run, a second tool call).
SELECT auth_id, auth_url
FROM agent_auth_flow
WHERE user_id = %(user_id)s AND provider = %(provider)s AND status = 'pending'
  AND scopes @> %(scopes)s AND expires_at > now() + interval '30 seconds'
  AND thread_id IS NOT DISTINCT FROM %(thread_id)s
ORDER BY created_at DESC
LIMIT 1;

-- name: agent_auth_complete_flow
-- Guarded: only a pending flow that has not expired completes, once.
UPDATE agent_auth_flow
SET status = 'completed', completed_at = now()
WHERE auth_id = %(auth_id)s AND status = 'pending' AND expires_at > now()
RETURNING auth_id;

-- name: agent_auth_fail_flow
UPDATE agent_auth_flow
SET status = 'failed', error = %(error)s, completed_at = now()
WHERE auth_id = %(auth_id)s AND status = 'pending'
RETURNING auth_id;

-- name: agent_auth_delete_old_flows
DELETE FROM agent_auth_flow WHERE expires_at < now() - interval '1 day';

-- name: agent_auth_interrupted_threads
-- Threads paused on this consent URL (runs that asked through the langchain-auth client,
-- which does not tell the server its thread), with the assistant of their last run.
SELECT t.thread_id, r.assistant_id, r.kwargs -> 'user' AS user
FROM thread t
JOIN LATERAL (
    SELECT assistant_id, kwargs FROM run
    WHERE run.thread_id = t.thread_id ORDER BY created_at DESC LIMIT 1
) r ON true
WHERE t.status = 'interrupted'
  AND jsonb_path_exists(t.interrupts, '$.*[*].value.auth_url ? (@ == $u)',
                        jsonb_build_object('u', %(auth_url)s::text));

-- name: agent_auth_thread_last_run
SELECT t.status, r.assistant_id, r.kwargs -> 'user' AS user
FROM thread t
JOIN LATERAL (
    SELECT assistant_id, kwargs FROM run
    WHERE run.thread_id = t.thread_id ORDER BY created_at DESC LIMIT 1
) r ON true
WHERE t.thread_id = %(thread_id)s;

-- name: agent_auth_thread_user
-- The user a thread's sandbox acts for: the one of its latest run that had one.
SELECT kwargs -> 'user' AS user
FROM run
WHERE thread_id = %(thread_id)s AND kwargs -> 'user' IS NOT NULL
  AND kwargs -> 'user' <> 'null'::jsonb
ORDER BY created_at DESC
LIMIT 1;
