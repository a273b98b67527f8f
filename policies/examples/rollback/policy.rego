package rollback

default rollback_required = false

rollback_required { input.model.accuracy < 0.85; input.deployment_age_hours > 24 }
