//! The shared conformance suite on `{{name}}`.

csal_core::link_providers!({{ident}});

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn {{name}}_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let target = csal_conformance::Target::new("{{name}}", "{{name}}", serde_json::json!({ "root": dir.path() }));
    csal_conformance::run(target).await.assert_passed();
}
