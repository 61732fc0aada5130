//! The example product (`examples/notes`), built on bulkhead's public API,
//! driven over HTTP: its routes, its permissions, its table, with the
//! platform's isolation underneath.

#[path = "../../examples/notes/notes.rs"]
mod product;

use crate::common::{HttpClient, TestFleet, serve};
use crate::people::{member, session};
use bulkhead::control::Mode;
use serde_json::json;

#[tokio::test]
async fn a_product_of_its_own_serves_its_routes_with_the_platforms_isolation() {
    let fleet = TestFleet::for_product(product::product()).await;
    let acme = fleet.tenant("acme", Mode::Database).await;
    let globex = fleet.tenant("globex", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let acme_writer =
        HttpClient::tenant(&server, &acme).bearer(&fleet.token(&acme, "member").await);
    let globex_writer =
        HttpClient::tenant(&server, &globex).bearer(&fleet.token(&globex, "admin").await);

    let made = acme_writer
        .post("/api/notes", json!({"body": "acme's secret"}))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["id"].as_i64().unwrap();
    assert_eq!(
        acme_writer.get(&format!("/api/notes/{id}")).await.json()["body"],
        "acme's secret"
    );
    // The same id on another tenant: that tenant's own table, which has no
    // such row (and whatever it has is its own).
    let theirs = globex_writer.get(&format!("/api/notes/{id}")).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    assert!(!theirs.body.contains("secret"));
    assert_eq!(globex_writer.get("/api/notes").await.json(), json!([]));
    assert_eq!(
        globex_writer
            .delete(&format!("/api/notes/{id}"))
            .await
            .status,
        404
    );
    // acme's token on globex's host: nothing.
    let crossed = HttpClient::new(server.addr, format!("{globex}.localhost"))
        .bearer(&fleet.token(&acme, "admin").await);
    assert_eq!(crossed.get("/api/notes").await.status, 404);

    // The product's own permission: a viewer reads, cannot write.
    let email = format!("v-{}@example.com", fleet.id);
    member(&fleet, &acme, &email, "viewer").await;
    let (cookie, csrf) = session(server.addr, &acme, &email).await;
    let viewer = HttpClient::tenant(&server, &acme).session(&cookie, &csrf);
    assert_eq!(viewer.get("/api/notes").await.json()[0]["id"], id);
    let refused = viewer.post("/api/notes", json!({"body": "no"})).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "forbidden");
    assert_eq!(viewer.delete(&format!("/api/notes/{id}")).await.status, 403);
    // Bad input is the platform's one error shape.
    let empty = acme_writer.post("/api/notes", json!({"body": ""})).await;
    assert_eq!(empty.status, 422);
    assert!(empty.json()["error"]["fields"]["body"].is_string());

    // Every write is in the tenant's own audit log, through the platform's route.
    let admin = HttpClient::tenant(&server, &acme).bearer(&fleet.token(&acme, "admin").await);
    assert_eq!(admin.delete(&format!("/api/notes/{id}")).await.status, 204);
    let audit = admin.get("/api/audit").await.json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"note.create") && actions.contains(&"note.delete"),
        "{actions:?}"
    );
    // The platform's routes are there, the reference app's are not.
    assert_eq!(admin.get("/api/me").await.status, 200);
    assert_eq!(admin.get("/api/projects").await.status, 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_runtime_role_uses_the_products_table_and_cannot_drop_or_alter_it() {
    let fleet = TestFleet::for_product(product::product()).await;
    for mode in [Mode::Database, Mode::Schema] {
        let slug = fleet
            .tenant(&format!("hostile-{}", mode.as_str()), mode)
            .await;
        let db = fleet.as_tenant(&slug).await;
        db.execute(
            "INSERT INTO notes (body, created_by) VALUES ('mine', 'test')",
            &[],
        )
        .await
        .expect("the runtime role writes its notes");
        for attack in [
            "DROP TABLE notes",
            "ALTER TABLE notes ADD COLUMN stolen text",
            "ALTER TABLE notes DISABLE TRIGGER ALL",
            "TRUNCATE notes",
            "CREATE INDEX ON notes (body)",
            "ALTER TABLE notes OWNER TO CURRENT_USER",
        ] {
            let e = db
                .batch_execute(attack)
                .await
                .expect_err(&format!("{attack}: allowed"));
            assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{attack}: {e}"
            );
        }
        let count: i64 = db
            .query_one("SELECT count(*) FROM notes", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 1);
    }
}

#[test]
fn a_product_permission_out_of_order_is_refused_at_start() {
    use bulkhead::auth::{Permission, Role};
    let bad = product::product().permission(Permission::new("notes.peek", &[Role::Viewer]));
    let e = bad.product().err().expect("refused");
    assert!(e.to_string().contains("notes.peek"), "{e}");
    let twice = product::product().permission(Permission::new("notes.write", &[Role::Owner]));
    assert!(twice.product().err().unwrap().to_string().contains("twice"));
}
