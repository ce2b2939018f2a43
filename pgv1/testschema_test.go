package pgv1

import "github.com/pulsesync/pulsesync/internal/v1test/workedexample"

// testSchemaSQL is the business schema every pgv1 test database carries. It exercises what the
// v1 store must handle:
//   - business.users and business.posts: the worked example's tables (docs/protocol-v1.md §7),
//     so its hashes can be checked; a post is a child of its user through a scope-inclusive,
//     deferrable foreign key with ON DELETE CASCADE (cascaded deletes are effects the client
//     did not push);
//   - business.comments: a text key, a column default, and a trigger that modifies the comment's
//     post (an effect on another table);
//   - business.typed_rows: every supported column type, a bounded varchar and a generated
//     column (readable, never written);
//   - business.numeric_values: the columns of the §4.5 vectors A and B.
const testSchemaSQL = workedexample.TablesSQL + `
CREATE TABLE business.comments (
    _sync_scope_id text   NOT NULL,
    id             text   NOT NULL,
    post_id        uuid,
    body           text   NOT NULL,
    stars          int2   NOT NULL DEFAULT 3 CHECK (stars BETWEEN 0 AND 5),
    PRIMARY KEY (_sync_scope_id, id),
    FOREIGN KEY (_sync_scope_id, post_id) REFERENCES business.posts (_sync_scope_id, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

-- A new comment marks its post: the bundle then holds an UPDATE of the post nobody pushed.
CREATE FUNCTION business.comment_marks_post() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE business.posts SET title = title || ' (commented)'
    WHERE _sync_scope_id = NEW._sync_scope_id AND id = NEW.post_id;
    RETURN NULL;
END $$;
CREATE TRIGGER comment_marks_post AFTER INSERT ON business.comments
    FOR EACH ROW EXECUTE FUNCTION business.comment_marks_post();

CREATE TABLE business.typed_rows (
    _sync_scope_id text NOT NULL,
    id             text NOT NULL,
    i2             int2,
    i4             int4,
    i8             int8,
    n              numeric(30, 9),
    f4             float4,
    f8             float8,
    b              bool,
    bin            bytea,
    u              uuid,
    t              text,
    vc             varchar(8),
    ch             char(3),
    d              date,
    tm             time,
    ts             timestamp,
    tstz           timestamptz,
    doubled        int8 GENERATED ALWAYS AS (i8 * 2) STORED,
    PRIMARY KEY (_sync_scope_id, id)
);

CREATE TABLE business.numeric_values (
    _sync_scope_id text NOT NULL,
    id             text NOT NULL,
    amount         numeric(30, 10),
    count          int4,
    enabled        bool,
    large_count    int8,
    ratio          float4,
    score          float8,
    small_count    int2,
    PRIMARY KEY (_sync_scope_id, id)
);
`

// testTables registers the test schema's tables, parents first; comments names its key
// column, the others leave it to the primary key.
var testTables = []TableSpec{
	{Schema: "business", Table: "users"},
	{Schema: "business", Table: "posts"},
	{Schema: "business", Table: "comments", KeyColumn: "id"},
	{Schema: "business", Table: "typed_rows"},
	{Schema: "business", Table: "numeric_values"},
}
