//! An output's own image when its times differ from the build's: BuildKit's exporters each
//! apply their own `rewrite-timestamp` and `source-date-epoch` to the layers and config they
//! export. The layers the build wrote are written again with the output's mtimes (lowered only,
//! see [`Mtimes::derives_from`]), and the config gets the output's `created`: the image a build
//! with only that output writes. A base image's layers and history stay as they are. It runs no
//! step and knows nothing of outputs.

use crate::layer::{self, Mtimes};
use crate::store::image::{rfc3339, ImageConfig};
use crate::store::{Image, Store, StoreError};

/// The times an output writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Times {
    /// The mtimes in the layers the build writes.
    pub mtimes: Mtimes,
    /// `created` of the image and of the history the build adds (seconds).
    pub created: i64,
    /// SOURCE_DATE_EPOCH's time (or `--timestamp N`), what a `--build-context` directory's
    /// history entry has.
    pub epoch: i64,
    /// Where `created` came from, for `inspect`.
    pub created_from: String,
}

impl Times {
    /// Whether an image written with `self` is the one written with `other` (where `created`
    /// came from is only a record beside it).
    pub fn same_image(&self, other: &Times) -> bool {
        (self.mtimes, self.created, self.epoch) == (other.mtimes, other.created, other.epoch)
    }
}

/// `img` (the build's, written with `from`'s mtimes; its first `base.0` layers and `base.1`
/// history entries its base image's) as a build writing `to` makes it. `img` itself when the
/// times are the same.
pub fn image(store: &Store, img: &Image, base: (usize, usize), from: &Times, to: &Times) -> Result<Image, StoreError> {
    if from.same_image(to) {
        return Ok(img.clone());
    }
    let fail = |why: String| StoreError::Io {
        op: "write the image with an output's times",
        path: img.manifest_digest.clone().into(),
        err: std::io::Error::other(why),
    };
    to.mtimes.derives_from(from.mtimes).map_err(fail)?;
    let mut config: ImageConfig = img.config.clone();
    let mut descs = img.manifest.layers.clone();
    if to.mtimes != from.mtimes {
        for (i, l) in img.layers().into_iter().enumerate().skip(base.0) {
            // which entries keep a time of their source's own (only `Zero` asks)
            let own = match to.mtimes {
                Mtimes::Zero => layer::own_times(store, &l.diff_id).ok_or_else(|| {
                    fail(format!(
                        "layer {} ({}) has no record of which of its files have their source's own time \
                         (written by an older slipway, or from --cache-from): build with --no-cache",
                        i + 1,
                        l.digest
                    ))
                })?,
                _ => Default::default(),
            };
            let new =
                layer::rewrite_layer(store, &l, &|path, t| to.mtimes.from_layer(from.mtimes, t, own.contains(path)))?;
            config.rootfs.diff_ids[i] = new.diff_id.clone();
            descs[i] = new.descriptor();
        }
    }
    let mut stepped = false;
    for h in config.history.iter_mut().skip(base.1) {
        if h.comment == crate::named_context::DIR_COMMENT {
            h.created = rfc3339(to.epoch);
        } else {
            h.created = rfc3339(to.created);
            stepped = true;
        }
    }
    // `created` is the last step's (a stage that only names its base keeps the base's)
    if stepped {
        config.created = rfc3339(to.created);
    }
    let (manifest, id) = store.put_image(&config, &descs)?;
    // what `inspect` shows as CreatedFrom, as the build records it for its own image
    let rel = format!("cache/created/{}.json", id.trim_start_matches("sha256:"));
    if store.read_record::<String>(&rel).as_deref() != Some(to.created_from.as_str()) {
        store.write_record(&rel, &to.created_from)?;
    }
    store.image_by_manifest(&manifest.digest)
}
