//! The real Sumatra client (PyPI `sumatra[git,remote]==0.8.1`) against the
//! real binary: `tests/client/` holds the pytest suite; this test makes its
//! virtual environment (once, from PyPI) and runs it. A failure prints the
//! suite's output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static VENV_LOCK: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv with the client, made or refreshed when requirements.txt changes.
pub fn client_venv() -> PathBuf {
    let _guard = VENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("client-venv");
    let requirements = repo().join("tests/client/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/client/requirements.txt");
    let stamp = venv.join("requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return venv;
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(&python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        "python3 -m venv",
    );
    run(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r tests/client/requirements.txt",
    );
    std::fs::write(&stamp, wanted).expect("write venv stamp");
    venv
}

#[test]
fn real_sumatra_client_suite() {
    let venv = client_venv();
    let mut pytest = Command::new(venv.join("bin/python"));
    if crate::util::backend() == crate::util::Backend::Postgres {
        let cluster = crate::pg::cluster();
        pytest
            .env("SUMATRA_TEST_PG_URL", cluster.url(""))
            .env("SUMATRA_TEST_CREATEDB", cluster.createdb());
    }
    let out = pytest
        .args([
            "-m",
            "pytest",
            "tests/client",
            "-q",
            "-x",
            "--no-header",
            "-rf",
        ])
        .current_dir(repo())
        .env("SUMATRA_SERVER_BIN", env!("CARGO_BIN_EXE_sumatra-server"))
        .env("SUMATRA_BCRYPT_COST", "4")
        .env(
            "PATH",
            format!(
                "{}:{}",
                venv.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the real-client suite failed:\n{stdout}\n{stderr}"
    );
    // pytest's last line reads like "40 passed in 29.1s": make sure tests ran.
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.contains(" passed") && !last.contains("failed"),
        "unexpected pytest summary: {last}"
    );
}
