// The default buildpacks are embedded (src/engine/defaults.rs): rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../buildpacks");
    println!("cargo:rerun-if-changed=../buildpacks.toml");
}
