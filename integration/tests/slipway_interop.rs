//! slipway's images in real engines: `podman load` of the docker-archive and the OCI tar,
//! `ctr images import` of both into a private containerd, `docker load` into a private dockerd
//! and back, each then running the image (through the runtime under test). The engines are
//! integration::engines' private instances; a missing engine skips its test with a note.

use integration::engines::{Engine, Kind};
use integration::slipway::Slipway;
use std::path::PathBuf;

/// A busybox image built by slipway and saved in both formats.
fn image(s: &Slipway) -> (PathBuf, PathBuf, String) {
    s.base("sw-base");
    let ctx = s.context(
        "interop",
        &[("Dockerfile", "FROM sw-base\nRUN echo built-by-slipway > /msg\nCMD [\"cat\", \"/msg\"]\n")],
    );
    s.build(&ctx, "interop:1", &[]).ok();
    let docker = s.dir.path().join("interop-docker.tar");
    let oci = s.dir.path().join("interop-oci.tar");
    s.run(&["save", "interop:1", "-o", &docker.to_string_lossy()]).ok();
    s.run(&["save", "interop:1", "-o", &oci.to_string_lossy(), "--format", "oci"]).ok();
    let id = s.save("interop:1").id();
    (docker, oci, id)
}

#[test]
fn podman_loads_both_formats_and_runs_the_image() {
    if Engine::bare(Kind::Podman).is_none() {
        return;
    }
    let s = Slipway::new();
    let (docker, oci, id) = image(&s);
    for tar in [docker, oci] {
        let podman = Engine::bare(Kind::Podman).expect("podman");
        let o = podman.run(&["load", "-i", &tar.to_string_lossy()]);
        assert_eq!(o.code, Some(0), "podman load {}: {o}", tar.display());
        let o = podman.run(&["image", "inspect", "--format", "{{.Id}}", "docker.io/library/interop:1"]);
        assert_eq!(o.text(), id.trim_start_matches("sha256:"), "same image ID");
        let o = podman.run(&["run", "--rm", "docker.io/library/interop:1"]);
        assert_eq!(o.stdout, "built-by-slipway\n", "{o}");
    }
}

#[test]
fn ctr_imports_both_formats_and_runs_the_image() {
    let Some(ctr) = Engine::bare(Kind::Containerd) else { return };
    let s = Slipway::new();
    let (docker, oci, _) = image(&s);
    for tar in [&oci, &docker] {
        let o = ctr.run(&["images", "import", &tar.to_string_lossy()]);
        assert_eq!(o.code, Some(0), "ctr import {}: {o}", tar.display());
        let o = ctr.run(&["images", "ls", "-q"]);
        assert!(o.stdout.contains("docker.io/library/interop:1"), "{o}");
        let id = integration::unique_name("sw");
        let o = ctr.run(&["run", "--rm", "docker.io/library/interop:1", &id]);
        assert_eq!(o.stdout, "built-by-slipway\n", "{o}");
        ctr.run(&["images", "rm", "docker.io/library/interop:1"]).ok();
    }
}

#[test]
fn docker_loads_the_archive_and_slipway_loads_dockers() {
    let Some(d) = Engine::bare(Kind::Docker) else { return };
    let s = Slipway::new();
    let (archive, _, id) = image(&s);
    d.run(&["load", "-i", &archive.to_string_lossy()]).ok();
    let o = d.run(&["image", "inspect", "--format", "{{.Id}}", "interop:1"]);
    assert_eq!(o.text(), id, "docker sees the same image ID");
    let o = d.run(&["run", "--rm", "interop:1"]);
    assert_eq!(o.stdout, "built-by-slipway\n", "{o}");
    // and back: what `docker save` writes, slipway loads, keeping the ID
    let back = s.dir.path().join("from-docker.tar");
    d.run(&["save", "interop:1", "-o", &back.to_string_lossy()]).ok();
    let t = Slipway::new();
    t.run(&["load", "-i", &back.to_string_lossy()]).ok();
    assert_eq!(t.save("interop:1").id(), id);
}
