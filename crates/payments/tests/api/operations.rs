//! What every process serves: readiness over payments' own dependencies, and the OpenAPI
//! document describing the payment routes.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn readiness_checks_the_payments_database_and_nats() {
    let app = spawn_app().await;

    let reply = app.get("/readyz").await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"ready": true, "checks": {"postgres:payments": "ok", "nats": "ok"}})
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_payment_and_webhook_routes() {
    let app = spawn_app().await;

    let document = app.get("/api/openapi.json").await.json();

    let payments = &document["paths"]["/api/payments"]["post"];
    for status in ["201", "400", "401", "402", "404", "409", "503"] {
        assert!(
            payments["responses"][status].is_object(),
            "no {status}: {payments}"
        );
    }
    assert!(document["paths"]["/api/payments/webhook"]["post"].is_object());
}

#[tokio::test]
async fn build_creates_and_migrates_the_namespaced_database_and_assembles_the_component() {
    use clap::Parser;
    use ticketing_common::{
        settings::CommonSettings,
        testing::{self, TestBus, TestDb},
    };
    use ticketing_payments::PaymentsSettings;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonSettings,
        #[command(flatten)]
        payments: PaymentsSettings,
    }
    let namespace = testing::unique_namespace();
    // Made first so the test drops what `build` creates: `<namespace>_payments`.
    let db = TestDb::create(&namespace, ticketing_payments::NAME).await;
    let bus = TestBus::create(&namespace).await;
    let cli = Cli::try_parse_from([
        "ticketing",
        "--namespace",
        namespace.as_str(),
        "--database-url",
        &testing::database_url(),
    ])
    .unwrap();

    let component = ticketing_payments::build(
        &cli.common,
        &cli.payments,
        &bus.bus,
        ticketing_payments::Unconfigured::UseDevelopment,
    )
    .await
    .expect("build");

    assert_eq!(component.name, "payments");
    let tasks: Vec<&str> = component.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        tasks,
        [
            "payments-outbox-relay",
            "payments-order-created",
            "payments-order-completed",
            "payments-order-cancelled",
            "payments-reconcile"
        ]
    );
    let checks: Vec<&str> = component.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(checks, ["postgres:payments", "nats"]);
    let pool = db.app_pool(1).await;
    for table in [
        "orders",
        "payments",
        "unmatched_charges",
        "refunds",
        "declines",
        "outbox",
    ] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(exists, "table {table} missing");
    }
}
