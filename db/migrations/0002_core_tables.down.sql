-- Undoes 0002: the tables in reverse order of creation (their policies, indexes, constraints
-- and grants go with them).
DROP TABLE approvals;
DROP TABLE cost_events;
DROP TABLE events;
DROP TABLE envelopes;
DROP TABLE budgets;
DROP TABLE policy_versions;
DROP TABLE policies;
DROP TABLE api_keys;
DROP TABLE users;
DROP TABLE tenants;
