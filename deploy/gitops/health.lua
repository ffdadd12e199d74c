-- Argo CD health check for Berth's custom resources (group berth.dev).
-- Register it in argocd-cm under resource.customizations.health.berth.dev_AgentDeployment
-- (see docs/gitops.md). It reads the kstatus conditions the operator writes:
--   generation not yet observed, or Reconciling=True  -> Progressing
--   Stalled=True                                       -> Degraded (with the reason)
--   Ready=True                                         -> Healthy
--   anything else                                      -> Progressing
local hs = { status = "Progressing", message = "Waiting for the operator" }

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

local function describe(c)
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local stalled = byType["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = byType["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
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
