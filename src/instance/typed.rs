//! Typed export calls: an export looked up and type-checked once ([`Instance::typed`]),
//! then called with Rust numbers and tuples, without a lookup or a check per call.

use std::marker::PhantomData;

use anyhow::Result;

use super::{Export, Instance};
use crate::error::{error, ErrorKind};
use crate::hostfunc::{scratch, FuncType, Val, WasmList};

/// Export `name` of an [`Instance`], checked to take `P` and give `R` (see
/// [`Instance::typed`]). Calls may come from any host thread, as [`Instance::call`]s.
pub struct TypedExport<'i, P, R> {
    instance: &'i Instance,
    export: &'i Export,
    name: &'i str,
    types: PhantomData<fn(P) -> R>,
}

impl Instance {
    /// Export `name`, checked once to have the parameters `P` and results `R`
    /// ([`WasmList`]s: `()`, a number, or a tuple of up to 8), for typed calls:
    ///
    /// ```no_run
    /// # fn f(instance: &wasithreads::Instance) -> anyhow::Result<()> {
    /// let add = instance.typed::<(i32, i32), i32>("add")?;
    /// assert_eq!(add.call((1, 2))?, 3);
    /// # Ok(()) }
    /// ```
    ///
    /// Errors (kind [`ErrorKind::Misuse`]): no callable export `name`, or one of another
    /// type (the message gives both).
    pub fn typed<P: WasmList, R: WasmList>(&self, name: &str) -> Result<TypedExport<'_, P, R>> {
        let Some((name, export)) = self.exports.get_key_value(name) else {
            return Err(error(ErrorKind::Misuse, format!("the module has no callable export `{name}`")));
        };
        let wanted = FuncType { params: P::kinds(), results: R::kinds() };
        if export.ty != wanted {
            return Err(error(ErrorKind::Misuse, format!("`{name}` is {}, not {wanted}", export.ty)));
        }
        Ok(TypedExport { instance: self, export, name, types: PhantomData })
    }
}

impl<P: WasmList, R: WasmList> TypedExport<'_, P, R> {
    /// Calls the export with `params` and returns its results. Errors as
    /// [`Instance::call_into`]'s, but for misuse, which [`Instance::typed`] ruled out.
    pub fn call(&self, params: P) -> Result<R> {
        scratch(P::LEN + R::LEN, Val::I32(0), |buf| {
            let (args, results) = buf.split_at_mut(P::LEN);
            params.write(args);
            self.instance.call_export(self.export, self.name, args, results)?;
            R::read(results)
                .ok_or_else(|| error(ErrorKind::Other, format!("`{}` gave results of other types", self.name)))
        })
    }

    /// The export's name.
    pub fn name(&self) -> &str {
        self.name
    }
}
