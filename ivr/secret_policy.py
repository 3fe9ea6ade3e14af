"""Moved to :mod:`ivr.core.secret_policy` (issue 18): this module only keeps the old import path working
for the modules other work packages are still splitting; new code imports from ``ivr.core.secret_policy``."""

from ivr.core.secret_policy import (
    AmiSecrets as AmiSecrets,
    Deployment as Deployment,
    MIN_DISTINCT as MIN_DISTINCT,
    MIN_LENGTH as MIN_LENGTH,
    agent_secret as agent_secret,
    agent_secret_variable as agent_secret_variable,
    deployment_secret_problems as deployment_secret_problems,
    fresh_secret as fresh_secret,
    secret_problem as secret_problem,
    secret_problems as secret_problems,
)
