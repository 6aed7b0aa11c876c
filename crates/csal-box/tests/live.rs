//! The conformance suite against the real Box, only when credentials are
//! given (never in CI by default). Either a server app with Client
//! Credentials Grant:
//!
//! CSAL_LIVE_BOX_CLIENT_ID, CSAL_LIVE_BOX_CLIENT_SECRET,
//! CSAL_LIVE_BOX_SUBJECT_TYPE (enterprise | user), CSAL_LIVE_BOX_SUBJECT_ID
//!
//! or a developer token (60 minutes, Developer Console → Configuration):
//!
//! CSAL_LIVE_BOX_CLIENT_ID, CSAL_LIVE_BOX_ACCESS_TOKEN
//!
//! plus CSAL_LIVE_BOX_ROOT_FOLDER_ID: an EMPTY folder the app may write
//! (everything the run writes there is deleted). A user refresh token is
//! deliberately not accepted here: Box refresh tokens are single use, and
//! the run would spend the one you gave it.

csal_core::link_providers!(csal_box);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn box_passes_conformance_live() {
    let (Some(client_id), Some(root)) = (var("CSAL_LIVE_BOX_CLIENT_ID"), var("CSAL_LIVE_BOX_ROOT_FOLDER_ID")) else {
        println!(
            "SKIP box live test: set CSAL_LIVE_BOX_CLIENT_ID, CSAL_LIVE_BOX_ROOT_FOLDER_ID and either \
             CSAL_LIVE_BOX_CLIENT_SECRET + CSAL_LIVE_BOX_SUBJECT_TYPE + CSAL_LIVE_BOX_SUBJECT_ID \
             (Client Credentials Grant) or CSAL_LIVE_BOX_ACCESS_TOKEN (developer token) to run it"
        );
        return;
    };
    let (config, bad) = match (
        var("CSAL_LIVE_BOX_CLIENT_SECRET"),
        var("CSAL_LIVE_BOX_SUBJECT_TYPE"),
        var("CSAL_LIVE_BOX_SUBJECT_ID"),
        var("CSAL_LIVE_BOX_ACCESS_TOKEN"),
    ) {
        (Some(secret), Some(kind), Some(id), _) => {
            let ccg = |secret: &str| {
                serde_json::json!({
                    "auth_method": "client_credentials", "client_id": client_id, "client_secret": secret,
                    "box_subject_type": kind, "box_subject_id": id, "root_folder_id": root,
                })
            };
            (ccg(&secret), ccg("not-the-client-secret"))
        }
        (_, _, _, Some(token)) => {
            let dev = |token: &str| serde_json::json!({ "client_id": client_id, "access_token": token, "root_folder_id": root });
            (dev(&token), dev("not-a-valid-access-token"))
        }
        _ => {
            println!("SKIP box live test: no CCG subject and no CSAL_LIVE_BOX_ACCESS_TOKEN given");
            return;
        }
    };
    let target = csal_conformance::Target::new("box@live", "box", config)
        // Above Box's 20 MB session minimum: a real chunked upload session.
        .large_size(24 * 1024 * 1024 + 4321)
        // Box limits API calls per user; a smaller listing keeps the run short.
        .list_objects(60)
        .bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}
