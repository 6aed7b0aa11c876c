//! ffmpeg, the recorder of the recording-path tests: a static build from
//! the `imageio-ffmpeg` Python package (ffmpeg with libx264, no system
//! install), in a venv under the cache. Not a server: it only tells the
//! tests where the binary is. It has no ffprobe; `ffmpeg -v error -i URL -f
//! null -` decodes a playlist end to end instead.

use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Emulator, Env, Running, pip_venv};

const PACKAGE: &str = "imageio-ffmpeg==0.8.1";

pub struct Ffmpeg;

impl Emulator for Ffmpeg {
    fn name(&self) -> &'static str {
        "ffmpeg"
    }
    fn crates(&self) -> &'static [&'static str] {
        // Not a storage provider: the recording gateway's end-to-end tests use it.
        &["csal-cli"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        pip_venv(&env.cache, "ffmpeg", &[PACKAGE]).map(|_| ())
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let venv = pip_venv(&env.cache, "ffmpeg", &[PACKAGE])?;
        let out = Command::new(venv.join("bin/python"))
            .args(["-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"])
            .output()
            .context("asking imageio-ffmpeg where ffmpeg is")?;
        let exe = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || exe.is_empty() {
            bail!("imageio-ffmpeg has no ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
        }
        let version = Command::new(&exe).arg("-version").output().context("running ffmpeg -version")?;
        if !version.status.success() {
            bail!("{exe} -version failed");
        }
        Ok(Running { name: self.name(), env: vec![("CSAL_TEST_FFMPEG".into(), exe)], processes: Vec::new() })
    }
}
