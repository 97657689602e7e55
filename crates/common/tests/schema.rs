//! Replicas of a service start together and each brings the database up to date at once:
//! none of them may fail on `common`'s own tables.

use futures::future::join_all;
use ticketing_common::{
    db,
    testing::{TestDb, unique_namespace},
};

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

#[tokio::test]
async fn eight_replicas_migrating_one_new_database_at_once_all_succeed() {
    for round in 0..5 {
        let db = TestDb::create(&unique_namespace(), "schema").await;
        let pools: Vec<_> = futures::future::join_all((0..8).map(|_| db.app_pool(1))).await;

        let results = join_all(
            pools
                .iter()
                .map(|pool| db::migrate_service(pool, &NO_MIGRATIONS, "schema", true)),
        )
        .await;

        for result in results {
            result.unwrap_or_else(|error| panic!("round {round}: {error:#}"));
        }
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables
             WHERE tablename IN ('outbox', 'parked_events', 'operator_actions')",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(tables, 3);
    }
}
