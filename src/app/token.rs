//! `hazgate token`: the local API's bearer tokens. A token is printed once, when it is
//! made; only its hash is kept.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;

use crate::{
    auth::{self, Role, TokenFile},
    cli::{TokenAction, TokenArgs, TokenRole},
};

pub fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let path = tokens_path(&args)?;
    match args.action {
        TokenAction::Add { name, role } => {
            let role = match role {
                TokenRole::Viewer => Role::Viewer,
                TokenRole::Operator => Role::Operator,
                TokenRole::Engineer => Role::Engineer,
            };
            let token = auth::add(&path, &name, role)?;
            eprintln!(
                "token for `{name}` ({}) added to {}; it is shown this once:",
                role.as_str(),
                path.display()
            );
            println!("{token}");
        }
        TokenAction::List => {
            for t in TokenFile::load(&path)?.tokens {
                println!(
                    "{}\t{}\t{}",
                    t.name,
                    t.role.as_str(),
                    t.created.to_rfc3339()
                );
            }
        }
        TokenAction::Revoke { name } => {
            if !auth::revoke(&path, &name)? {
                eprintln!("no token named `{name}` in {}", path.display());
                return Ok(ExitCode::FAILURE);
            }
            eprintln!("token `{name}` revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--file`, else the site file's `[api] tokens_path`, else beside the site file.
fn tokens_path(args: &TokenArgs) -> anyhow::Result<PathBuf> {
    if let Some(f) = &args.file {
        return Ok(f.clone());
    }
    let config = args
        .config
        .as_ref()
        .context("say whose tokens: --config SITE_FILE or --file TOKENS_FILE")?;
    let site = super::load(config)?;
    Ok(site
        .api
        .tokens_path
        .clone()
        .unwrap_or_else(|| auth::beside(config)))
}
