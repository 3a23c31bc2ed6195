//! Tenant first, then data: a caller's read checks the order's owner on the
//! first, smallest read (the state item), and reads nothing else of another
//! tenant's order, so neither the answer nor its cost tells a foreign order
//! from a missing one (docs/benchmarks.md, "Foreign or missing").

use adapters::DynamoOrderStore;
use integration_tests::{TestApp, sample_order};
use shared::domain::{OrderNumber, Scope};
use shared::polling::OrderFeed;
use shared::ports::{Access, Lookup, OrderStore};

/// The test stack's orders table, with a history table that does not exist:
/// any read of an order's history fails.
fn store_without_history(app: &TestApp) -> DynamoOrderStore {
    DynamoOrderStore::new(
        app.stack.dynamodb.clone(),
        app.stack.orders_table().expect("the orders table"),
        "no-such-history-table",
    )
}

fn sample_number() -> OrderNumber {
    OrderNumber::parse(
        sample_order()["package"]["order_number"]
            .as_str()
            .expect("a number"),
    )
    .expect("a valid number")
}

#[tokio::test]
async fn a_foreign_orders_history_is_never_read() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let store = store_without_history(&app);
    let number = sample_number();
    let other_client = Scope::Client("21".into());
    let other_warehouse = Scope::Warehouse(["nowhere".to_owned()].into());
    let owner = Scope::Client("20".into());

    let as_other_client = store.get(&number, Access::Scope(&other_client)).await;
    let as_other_warehouse = store.get(&number, Access::Scope(&other_warehouse)).await;
    let polled_by_other = store
        .get_many(std::slice::from_ref(&number), Access::Scope(&other_client))
        .await;
    let as_owner = store.get(&number, Access::Scope(&owner)).await;

    assert_eq!(as_other_client.expect("no history read"), Lookup::Foreign);
    assert_eq!(
        as_other_warehouse.expect("no history read"),
        Lookup::Foreign
    );
    assert!(polled_by_other.expect("no history read").is_empty());
    // The owner's read does go on to the history (here: and fails), so the
    // reads above stopped at the owner.
    assert!(as_owner.is_err(), "{as_owner:?}");
}

#[tokio::test]
async fn the_owner_and_the_warehouse_read_the_whole_order() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let store = app.stack.store().expect("the store");
    let number = sample_number();
    let warehouse = Scope::Warehouse(["mabang".to_owned()].into());

    for scope in [Scope::Client("20".into()), warehouse] {
        let found = store
            .get(&number, Access::Scope(&scope))
            .await
            .expect("a read");
        let Lookup::Found(record) = found else {
            panic!("{scope:?} did not find its order: {found:?}");
        };
        assert_eq!(record.order.order_number, number);
    }
    let missing = OrderNumber::parse("nobody-has-this").expect("a number");
    assert_eq!(
        store.get(&missing, Access::Service).await.expect("a read"),
        Lookup::Missing
    );
}
