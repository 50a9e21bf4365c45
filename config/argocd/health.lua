-- Argo CD health of a TenantPurchasePolicy or TenantPurchasePolicySet
-- (commerce.tenantpolicy.io). It reads what kstatus reads, in kstatus' order,
-- so Argo CD and Flux agree (test/ops checks both on the same samples):
--   being deleted                                 -> Progressing
--   spec.suspend                                  -> Suspended (kstatus has no such state)
--   status.observedGeneration ~= metadata.generation -> Progressing
--   Reconciling=True                              -> Progressing
--   Stalled=True                                  -> Degraded
--   Ready=True                                    -> Healthy
--   Ready=False or Unknown                        -> Progressing
--   no Ready condition                            -> Healthy
-- The message names the deciding condition's reason and message; a Healthy
-- policy in Observe mode whose tenant differs says so (Drifted=True).
local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.type .. "=" .. c.status
  if c.reason ~= nil and c.reason ~= "" then
    text = text .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  return result("Progressing", "Deleting: the controller restores or releases the tenant before the finalizer goes")
end
if obj.spec ~= nil and obj.spec.suspend == true then
  return result("Suspended", "spec.suspend is true: no call to Microsoft until it is cleared")
end

local status = obj.status or {}
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration ~= generation then
  return result("Progressing", "Generation " .. generation .. " not yet observed (observedGeneration " .. status.observedGeneration .. ")")
end

local conditions = status.conditions or {}
for _, c in ipairs(conditions) do
  if c.type == "Reconciling" and c.status == "True" then
    return result("Progressing", describe(c))
  end
  if c.type == "Stalled" and c.status == "True" then
    return result("Degraded", describe(c))
  end
end

local ready = condition(conditions, "Ready")
if ready == nil then
  return result("Healthy", "No Ready condition")
end
if ready.status ~= "True" then
  return result("Progressing", describe(ready))
end
local drifted = condition(conditions, "Drifted")
if drifted ~= nil and drifted.status == "True" then
  return result("Healthy", describe(ready) .. "; " .. describe(drifted))
end
return result("Healthy", describe(ready))
