"""Pure rendering of sandboxes: SandboxPool, SandboxClaim and the runtime's access to them.

- ``names``: labels, annotations and child names of pools and claims;
- ``pod``: the sandbox Pod (sandbox container, auth-proxy sidecar, init containers);
- ``proxy``: the auth proxy's ``config.json`` and the Secret mounts it needs;
- ``ca``: the pool's certificate authority, its Secret and the public bundle ConfigMap;
- ``netpol``: the managed NetworkPolicy of a pool's Pods;
- ``pool``: the pool daemon's decisions (create, delete, hand out warm Pods);
- ``claim``: binding a claim to a warm or cold Pod, its token, its expiry;
- ``status``: status and conditions of pools and claims;
- ``access``: what an AgentDeployment with ``spec.sandbox`` gets (Role, RoleBinding, key).

Like the rest of ``render``, nothing here performs I/O or imports kopf, the Kubernetes
client, psycopg or redis (the import-linter contract covers this package too).
"""
