-- Argo CD health check for RocketMQInstance (dms.rocketmq-operator.io).
--
-- Argo CD has no built-in check for this group. Install it as
--   resource.customizations.health.dms.rocketmq-operator.io_RocketMQInstance
-- in argocd-cm (docs/gitops-health.md). It reads what the operator writes: conditions Ready,
-- Reconciling and Stalled (KEP-1623, each with observedGeneration), status.observedGeneration, and the
-- pause annotation. Argo CD runs it with gopher-lua (Lua 5.1); the tests run it in Lua 5.1 too.
--
--   being deleted                    Progressing (Degraded when the last delete attempt failed)
--   paused by annotation             Suspended
--   no status / older generation     Progressing
--   Stalled=True                     Degraded   (needs a person: failed creation, terminal error)
--   Ready=True                       Healthy
--   Reconciling=True                 Progressing (creating, resizing, waiting on the cloud)
--   anything else                    Degraded   (e.g. the cloud reports the instance as ERROR)

local PAUSED_ANNOTATION = "rocketmq-operator.io/paused"

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if reason ~= "" then
    return reason
  end
  if message ~= "" then
    return message
  end
  return fallback
end

local hs = {}
local meta = obj.metadata or {}
local annotations = meta.annotations or {}
local status = obj.status
local ready = condition(status, "Ready")

if meta.deletionTimestamp ~= nil then
  if ready ~= nil and ready.reason == "DeleteFailed" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = "Deleting: " .. describe(ready, "waiting for the operator to delete the cloud instance")
  return hs
end

-- The operator's own test: the annotation's value, case-insensitively, is "true".
local paused = annotations[PAUSED_ANNOTATION]
if paused ~= nil and string.lower(paused) == "true" then
  hs.status = "Suspended"
  hs.message = "Paused by the " .. PAUSED_ANNOTATION .. " annotation: no cloud changes until it is removed"
  return hs
end

if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = meta.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

hs.status = "Degraded"
hs.message = describe(ready, "Not ready")
return hs
