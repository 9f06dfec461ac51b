//! RUN's default network, BuildKit's sandbox: a namespace of the step's own (lo and tap0) that
//! reaches out through slirp4netns and not to the host's loopback, with slirp4netns's resolver
//! in /etc/resolv.conf; `--network none` and `RUN --network=none` still get an empty one. The
//! reachability test runs the whole build in a private network namespace the test makes, with a
//! veth pair whose address plays "the internet": nothing leaves this machine's loopback.

use integration::engines::have;
use integration::slipway::{self, Saved, Slipway};
use std::fs;
use std::process::Command;

fn text(img: &Saved, p: &str) -> String {
    let e = img.find(p).unwrap_or_else(|| panic!("{p} not in any layer"));
    String::from_utf8_lossy(&e.data).into_owned()
}

const LINKS: &str = "sh -c 'cat /proc/net/dev | tail -n +3 | wc -l'";

#[test]
fn the_default_network_is_a_sandbox_of_the_steps_own() {
    if !have("slirp4netns") {
        integration::skip("slirp4netns not installed (make deps installs it): RUN's default network not tested");
        return;
    }
    let s = Slipway::new();
    s.base("bb");
    let df = format!(
        "FROM bb\n\
         RUN {LINKS} > /links && ip -4 -o addr show tap0 > /tap0 && ip route > /route && cat /etc/resolv.conf > /resolv\n\
         RUN --network=none {LINKS} > /none\n"
    );
    let ctx = s.context("net", &[("Dockerfile", &df)]);
    s.build(&ctx, "net:1", &[]).ok();
    let img = s.save("net:1");
    assert_eq!(text(&img, "links").trim(), "2", "lo and tap0");
    assert!(text(&img, "tap0").contains("10.0.2.100/24"), "{}", text(&img, "tap0"));
    assert!(text(&img, "route").contains("default via 10.0.2.2"), "{}", text(&img, "route"));
    // BuildKit's resolv.conf: the host's nameservers but loopback ones, which slirp4netns's
    // forwarder (10.0.2.3) stands for when nothing else is left
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<&str> = host
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .map(str::trim)
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok_and(|a| !a.is_loopback()))
        .collect();
    let resolv = text(&img, "resolv");
    if servers.is_empty() || host.contains("127.0.0.53") {
        assert!(
            resolv.contains("nameserver 10.0.2.3") || resolv.lines().any(|l| l.starts_with("nameserver ")),
            "{resolv}"
        );
    } else {
        for a in servers {
            assert!(resolv.contains(&format!("nameserver {a}")), "{a} not in {resolv}");
        }
    }
    assert!(!resolv.contains("127.0.0."), "{resolv}");
    assert_eq!(text(&img, "none").trim(), "1", "--network=none: only lo");
    // nothing of the network reaches a layer (the resolv.conf mount point was made for the step)
    assert!(img.find("etc/resolv.conf").is_none(), "/etc/resolv.conf is in a layer");
    // build --network none: every step without a flag gets an empty namespace
    let plain = s.context("net-none", &[("Dockerfile", &format!("FROM bb\nRUN {LINKS} > /links\n"))]);
    s.build(&plain, "net:none", &["--network", "none"]).ok();
    assert_eq!(text(&s.save("net:none"), "links").trim(), "1");
}

#[test]
fn a_step_reaches_out_but_not_the_hosts_loopback() {
    if !have("slirp4netns") || !have("unshare") {
        integration::skip("slirp4netns or unshare missing: RUN's outbound network not tested");
        return;
    }
    let s = Slipway::new();
    s.base("bb");
    let www = s.dir.path().join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("hello.txt"), "from outside\n").unwrap();
    let df = "FROM bb\n\
        RUN wget -q -O /got http://192.0.2.1:8080/hello.txt && wget -q -O /via-gw http://gw:8080/hello.txt\n\
        RUN if wget -q -T 5 -O /dev/null http://10.0.2.2:8081/hello.txt; then echo reached > /loopback; else echo refused > /loopback; fi\n";
    let ctx = s.context("out", &[("Dockerfile", df)]);
    // a private network namespace: lo, a veth pair whose 192.0.2.1 stands for a server out
    // there, and the same server on the namespace's loopback (which a step must not reach)
    let script = format!(
        "set -e\n\
         ip link set lo up\n\
         ip link add v0 type veth peer name v1\n\
         ip addr add 192.0.2.1/24 dev v0\n\
         ip link set v0 up; ip link set v1 up\n\
         ip route add default dev v0\n\
         busybox httpd -f -p 192.0.2.1:8080 -h {www} & a=$!\n\
         busybox httpd -f -p 127.0.0.1:8081 -h {www} & b=$!\n\
         trap 'kill $a $b' EXIT\n\
         {bin} --root {root} build -t out:1 --runtime {rt} --add-host gw:host-gateway {ctx}\n",
        www = www.display(),
        bin = slipway::bin().display(),
        root = s.root().display(),
        rt = slipway::runtime(),
        ctx = ctx.display(),
    );
    let o = Command::new("unshare").args(["--net", "--", "sh", "-c", &script]).output().unwrap();
    assert!(
        o.status.success(),
        "build in a private namespace: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let img = s.save("out:1");
    assert_eq!(text(&img, "got"), "from outside\n");
    // host-gateway: the host's outward address (here the veth's, its default route's source)
    assert_eq!(text(&img, "via-gw"), "from outside\n");
    assert_eq!(text(&img, "loopback").trim(), "refused", "a step reached the host's loopback through 10.0.2.2");
}
