-- Argo CD health check for Berth's custom resources (group berth.dev): AgentDeployment,
-- AgentCron, SandboxPool and SandboxClaim. One script for the four kinds; argocd-cm.yaml in
-- this folder registers it under resource.customizations.health.berth.dev_<Kind>.
-- It reads the kstatus conditions Berth writes (Ready, Reconciling, Stalled) and
-- status.observedGeneration:
--   no status yet, or generation not yet observed       -> Progressing
--   Stalled=True                                        -> Degraded (reason: message)
--   AgentCron with spec.suspend                         -> Suspended
--   Ready=True                                          -> Healthy
--   Ready=False with a failure reason                   -> Degraded
--   anything else (rolling out, replenishing, pending)  -> Progressing
-- Lua 5.1 (Argo CD's gopher-lua); tested in tests/unit/test_argocd_health.py.
local hs = { status = "Progressing", message = "Waiting for the operator" }
local kind = obj.kind or ""

-- Ready=False reasons that mean "broken", not "on its way" (besides the patterns below).
local failing = {
  SandboxLost = true,    -- SandboxClaim: its bound Pod failed or was deleted
  PoolNotFound = true,   -- SandboxClaim
  PoolInvalid = true,    -- SandboxClaim
  AdoptionConflict = true,
}

local function isFailure(reason)
  if reason == nil then
    return false
  end
  if failing[reason] then
    return true
  end
  return string.match(reason, "Failed$") ~= nil or string.match(reason, "Error$") ~= nil
    or string.match(reason, "NotFound$") ~= nil or string.match(reason, "^Invalid") ~= nil
end

local function describe(c)
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

if kind == "AgentCron" then
  hs.message = "Waiting for the runtime of the AgentDeployment"
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local generation = obj.metadata and obj.metadata.generation or 0
local observed = obj.status.observedGeneration or 0
if observed < generation then
  hs.message = "Generation " .. generation .. " not yet reconciled (observed " .. observed .. ")"
  return hs
end

local byType = {}
for _, c in ipairs(obj.status.conditions) do
  byType[c.type] = c
end

local stalled = byType["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if kind == "AgentCron" and obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended: no new runs are scheduled"
  return hs
end

local ready = byType["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  local last = byType["LastRunSucceeded"]
  if last ~= nil and last.status == "False" then
    hs.message = hs.message .. " (last run: " .. describe(last) .. ")"
  end
  return hs
end

if ready ~= nil and ready.status == "False" and isFailure(ready.reason) then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

local reconciling = byType["Reconciling"]
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
elseif ready ~= nil then
  hs.message = describe(ready)
end
return hs
