-- Interactions, one row each: the Put change in the codec's binary form (what the engine reads
-- back), the same properties in the JSON form of docs/protocol.md (for people and tools), the
-- interaction's location by name, and a version bumped by every commit that changes it.
CREATE TABLE ixn_interactions (
    id          text PRIMARY KEY,
    state       text NOT NULL,
    location    text NOT NULL,
    properties  jsonb NOT NULL,
    change      bytea NOT NULL,
    version     bigint NOT NULL DEFAULT 1
) WITH (fillfactor = 70);
-- No index but the primary key, and room left in each page: an update then stays on its page
-- with no index to change (a HOT update), which more than halves the cost of a group commit.
-- The server reads rows only by scanning them all at start. An operator who queries by
-- location can add an index (CREATE INDEX ON ixn_interactions (location)), at that cost.

-- The InteractionId generator's state (the Ids change), and other single values.
CREATE TABLE ixn_meta (
    key    text PRIMARY KEY,
    value  bytea NOT NULL
);

-- Who may write: every server that opens the store takes the next epoch, and every write
-- transaction checks that the epoch is still its own (fencing).
CREATE TABLE ixn_leader (
    id          int PRIMARY KEY CHECK (id = 1),
    epoch       bigint NOT NULL,
    holder      text NOT NULL,
    advertised  text NOT NULL,
    renewed_at  timestamptz NOT NULL
);
INSERT INTO ixn_leader VALUES (1, 0, '', '', now());
