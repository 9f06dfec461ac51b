//! slipway's image commands: save (docker-archive and OCI), load, tag, rmi, images, inspect,
//! history, unpack into a bundle a runtime can run.

use integration::slipway::{read_saved, tar_files, Slipway};
use std::process::Command;

fn small_image(s: &Slipway) -> String {
    let ctx = s.context(
        "small",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a /a\nENV X=1\nCOPY b /sub/b\nCMD [\"/a\"]\n"),
            ("a", "aaa"),
            ("b", "bbb"),
        ],
    );
    s.build(&ctx, "small:1", &[]).ok();
    s.save("small:1").id()
}

#[test]
fn docker_archive_layout_and_round_trip() {
    let s = Slipway::new();
    let id = small_image(&s);
    let out = s.dir.path().join("small.tar");
    s.run(&["save", "small:1", "-o", &out.to_string_lossy()]).ok();
    let files = tar_files(&out);
    for f in ["manifest.json", "repositories", "index.json", "oci-layout"] {
        assert!(files.contains_key(f), "{f} in the docker archive");
    }
    let repos: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert!(repos["small"]["1"].is_string());
    let img = read_saved(&out);
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.id(), id);
    // the layer blobs are plain tars named by their diff_id
    let diff_ids = img.config["rootfs"]["diff_ids"].as_array().unwrap();
    let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    for (l, d) in m[0]["Layers"].as_array().unwrap().iter().zip(diff_ids) {
        assert_eq!(l.as_str().unwrap().rsplit('/').next(), d.as_str().unwrap().strip_prefix("sha256:"));
    }
    // load into a fresh store: same ID and name
    let t = Slipway::new();
    let r = t.run(&["load", "-i", &out.to_string_lossy()]).ok();
    assert!(r.stdout.contains("small:1"), "{}", r.stdout);
    assert_eq!(t.save("small:1").id(), id);
    // and it is usable as a base
    let ctx = t.context("child", &[("Dockerfile", "FROM small:1\nCOPY c /c\n"), ("c", "c")]);
    t.build(&ctx, "child", &[]).ok();
    assert_eq!(t.save("child").layers.len(), 3);
}

#[test]
fn oci_archive_round_trip() {
    let s = Slipway::new();
    let id = small_image(&s);
    let out = s.dir.path().join("small-oci.tar");
    s.run(&["save", "small:1", "-o", &out.to_string_lossy(), "--format", "oci"]).ok();
    let files = tar_files(&out);
    assert!(files.contains_key("oci-layout") && files.contains_key("index.json"));
    assert!(!files.contains_key("manifest.json"));
    let idx: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let ann = &idx["manifests"][0]["annotations"];
    assert_eq!(ann["io.containerd.image.name"], "docker.io/library/small:1");
    assert_eq!(ann["org.opencontainers.image.ref.name"], "1");
    let t = Slipway::new();
    t.run(&["load", "-i", &out.to_string_lossy()]).ok();
    assert_eq!(t.save("small:1").id(), id);
}

#[test]
fn tag_rmi_images_inspect_history() {
    let s = Slipway::new();
    let id = small_image(&s);
    s.run(&["tag", "small:1", "other"]).ok();
    let imgs = s.run(&["images"]).ok().stdout;
    assert!(imgs.contains("small") && imgs.contains("other") && imgs.contains("latest"), "{imgs}");
    let ins: serde_json::Value = serde_json::from_str(&s.run(&["inspect", "other"]).ok().stdout).unwrap();
    assert_eq!(ins[0]["Id"], id.as_str());
    assert_eq!(ins[0]["Config"]["Cmd"], serde_json::json!(["/a"]));
    let h = s.run(&["history", "small:1"]).ok().stdout;
    assert!(h.contains("COPY b /sub/b") && h.contains("ENV X=1"), "{h}");
    s.run(&["rmi", "other"]).ok();
    assert_ne!(s.run(&["inspect", "other"]).code, 0);
    s.run(&["inspect", "small:1"]).ok();
    let r = s.run(&["inspect", "nope"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("No such image: nope"), "{}", r.stderr);
}

#[test]
fn unpack_makes_a_runnable_bundle() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.context(
        "app",
        &[("Dockerfile", "FROM sw-base\nRUN echo from-image > /msg\nUSER bob\nWORKDIR /tmp\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat /msg; id -u; pwd\"]\n")],
    );
    s.build(&ctx, "app", &[]).ok();
    let b = s.dir.path().join("bundle");
    s.run(&["unpack", "app", &b.to_string_lossy()]).ok();
    assert!(b.join("rootfs/bin/busybox").is_file());
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["process"]["args"], serde_json::json!(["/bin/sh", "-c", "cat /msg; id -u; pwd"]));
    assert_eq!(cfg["process"]["user"]["uid"], 1000);
    assert_eq!(cfg["process"]["cwd"], "/tmp");
    let state = s.dir.path().join("rt-state");
    let id = integration::unique_name("slipway-unpack");
    let o = Command::new(integration::slipway::runtime())
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&b)
        .arg(&id)
        .output()
        .unwrap();
    let _ =
        Command::new(integration::slipway::runtime()).arg("--root").arg(&state).args(["delete", "-f", &id]).output();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out, "from-image\n1000\n/tmp\n");
}

#[test]
fn file_capabilities_survive_copy_save_and_unpack() {
    let s = Slipway::new();
    let ctx = s.context("caps", &[("Dockerfile", "FROM scratch\nCOPY ping /ping\n"), ("ping", "#!/bin/sh\n")]);
    let st = Command::new("setcap").arg("cap_net_raw+ep").arg(ctx.join("ping")).status().unwrap();
    assert!(st.success());
    s.build(&ctx, "caps", &[]).ok();
    let img = s.save("caps");
    let e = img.find("ping").unwrap();
    assert_eq!(e.xattrs, ["security.capability"], "{e:?}");
    let b = s.dir.path().join("bundle");
    s.run(&["unpack", "caps", &b.to_string_lossy()]).ok();
    let o = Command::new("getcap").arg(b.join("rootfs/ping")).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("cap_net_raw"), "{o:?}");
}

#[test]
fn load_picks_our_platform_from_a_multi_platform_index() {
    use integration::sha256_hex as digest_hex;
    let s = Slipway::new();
    let id = small_image(&s);
    let out = s.dir.path().join("oci.tar");
    s.run(&["save", "small:1", "-o", &out.to_string_lossy(), "--format", "oci"]).ok();
    let mut files = tar_files(&out);
    let idx: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let mut m = idx["manifests"][0].clone();
    let ann = m["annotations"].clone();
    m.as_object_mut().unwrap().remove("annotations");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let mut other = m.clone();
    other["digest"] = serde_json::json!("sha256:0000000000000000000000000000000000000000000000000000000000000000");
    other["platform"] = serde_json::json!({"os": "linux", "architecture": "s390x-none"});
    m["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [other, m]
    }))
    .unwrap();
    let hex = digest_hex(&inner);
    files.insert(format!("blobs/sha256/{hex}"), inner.clone());
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{hex}"), "size": inner.len(), "annotations": ann}]});
    files.insert("index.json".into(), serde_json::to_vec(&top).unwrap());
    let nested = s.dir.path().join("nested.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&nested).unwrap());
    for (p, d) in &files {
        let mut h = tar::Header::new_ustar();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, &d[..]).unwrap();
    }
    b.finish().unwrap();
    let t = Slipway::new();
    t.run(&["load", "-i", &nested.to_string_lossy()]).ok();
    assert_eq!(t.save("small:1").id(), id);
}
