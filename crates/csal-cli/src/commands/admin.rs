//! `csal admin ...`: the admin password and API tokens.

use std::io::{BufRead, IsTerminal};

use csal_catalog::{Catalog, TokenScope};
use serde_json::json;

use crate::AdminCmd;
use crate::exit::{CliError, CliResult};
use crate::output;

fn read_password(from_stdin: bool) -> CliResult<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let first = rpassword::prompt_password("New admin password: ")?;
    let again = rpassword::prompt_password("Again: ")?;
    if first != again {
        return Err(CliError::usage("the two passwords differ"));
    }
    Ok(first)
}

pub async fn run(cat: &Catalog, cmd: AdminCmd, json: bool) -> CliResult {
    match cmd {
        AdminCmd::SetPassword { password_stdin } => {
            let password = read_password(password_stdin)?;
            csal_admin::auth::set_password(cat, &password).await?;
            if json {
                output::json(&json!({"password_set": true}));
            } else {
                println!("admin password set; every admin session on every node was logged out");
            }
        }
        AdminCmd::CreateToken { name, scope } => {
            let scope: TokenScope = scope.parse()?;
            let token = cat.create_token(&name, scope).await?;
            if json {
                output::json(&json!({"name": name, "scope": scope, "token": token}));
            } else {
                println!("{token}");
                eprintln!(
                    "API token '{name}' (scope {scope}) created; it is shown only now. Use it as: Authorization: Bearer <token>"
                );
            }
        }
        AdminCmd::RevokeToken { name } => {
            cat.revoke_token(&name).await?;
            if json {
                output::json(&json!({"revoked": name}));
            } else {
                println!("API token '{name}' revoked");
            }
        }
        AdminCmd::Tokens => {
            let tokens = cat.list_tokens().await?;
            if json {
                output::json(&tokens);
            } else if tokens.is_empty() {
                println!("no API tokens (create one with `csal admin create-token NAME --scope ingest|read|admin`)");
            } else {
                for t in tokens {
                    println!("{:<24} {}", t.name, t.scope);
                }
            }
        }
    }
    Ok(())
}
