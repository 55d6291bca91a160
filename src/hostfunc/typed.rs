//! Rust types as WebAssembly values: numbers as values ([`WasmTy`]), `()`, one number or
//! a tuple of numbers as a list of them ([`WasmList`]), and closures over those as host
//! functions ([`HostFunc::wrap`]). Typed export calls ([`crate::TypedExport`]) use the
//! same lists.

use anyhow::{anyhow, Result};

use super::{Caller, FuncType, HostFunc, Val, ValKind};

/// A Rust number that is a WebAssembly value: `i32`, `u32` (an i32 read as unsigned, as
/// guest pointers are), `i64`, `u64`, `f32`, `f64`.
pub trait WasmTy: Copy + Send + Sync + 'static {
    /// Its WebAssembly type.
    const KIND: ValKind;
    /// It as a value.
    fn into_val(self) -> Val;
    /// The number in `v`, if `v` is of [`Self::KIND`].
    fn from_val(v: Val) -> Option<Self>;
}

macro_rules! wasm_ty {
    ($($t:ty => $kind:ident as $inner:ty),* $(,)?) => {$(
        impl WasmTy for $t {
            const KIND: ValKind = ValKind::$kind;
            fn into_val(self) -> Val {
                Val::$kind(<$inner>::from_ne_bytes(self.to_ne_bytes()))
            }
            fn from_val(v: Val) -> Option<Self> {
                match v {
                    Val::$kind(x) => Some(<$t>::from_ne_bytes(x.to_ne_bytes())),
                    _ => None,
                }
            }
        }
    )*};
}

wasm_ty! {
    i32 => I32 as i32,
    u32 => I32 as i32,
    i64 => I64 as i64,
    u64 => I64 as i64,
    f32 => F32 as f32,
    f64 => F64 as f64,
}

/// A list of WebAssembly values as one Rust type: `()` for none, a [`WasmTy`] for one,
/// a tuple of up to 8 for more (`(i32,)` is one too). The parameters and results of
/// [`HostFunc::wrap`] closures and of [`crate::TypedExport`].
pub trait WasmList: Sized + Send + 'static {
    /// The kinds of the values, in order.
    fn kinds() -> Vec<ValKind>;
    /// How many values (`kinds().len()`).
    const LEN: usize;
    /// Writes the values to `out`, which holds [`Self::LEN`].
    fn write(self, out: &mut [Val]);
    /// The list in `vals`, if they are [`Self::LEN`] values of [`Self::kinds`].
    fn read(vals: &[Val]) -> Option<Self>;
}

impl<T: WasmTy> WasmList for T {
    fn kinds() -> Vec<ValKind> {
        vec![T::KIND]
    }
    const LEN: usize = 1;
    fn write(self, out: &mut [Val]) {
        out[0] = self.into_val();
    }
    fn read(vals: &[Val]) -> Option<Self> {
        match vals {
            [v] => T::from_val(*v),
            _ => None,
        }
    }
}

macro_rules! wasm_list {
    ($n:expr; $($t:ident $i:tt),*) => {
        impl<$($t: WasmTy),*> WasmList for ($($t,)*) {
            fn kinds() -> Vec<ValKind> {
                vec![$($t::KIND),*]
            }
            const LEN: usize = $n;
            #[allow(unused_variables)]
            fn write(self, out: &mut [Val]) {
                $(out[$i] = self.$i.into_val();)*
            }
            #[allow(unused_variables)]
            fn read(vals: &[Val]) -> Option<Self> {
                if vals.len() != $n {
                    return None;
                }
                Some(($($t::from_val(vals[$i])?,)*))
            }
        }
    };
}

wasm_list!(0;);
wasm_list!(1; A 0);
wasm_list!(2; A 0, B 1);
wasm_list!(3; A 0, B 1, C 2);
wasm_list!(4; A 0, B 1, C 2, D 3);
wasm_list!(5; A 0, B 1, C 2, D 3, E 4);
wasm_list!(6; A 0, B 1, C 2, D 3, E 4, F 5);
wasm_list!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
wasm_list!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// What a [`HostFunc::wrap`] closure returns: its results as a [`WasmList`], or an
/// `anyhow::Result` of them, whose error traps the calling guest thread.
pub trait HostResults: Send + 'static {
    /// The list's type.
    type List: WasmList;
    /// The results, or the error to trap with.
    fn into_results(self) -> Result<Self::List>;
}

impl<R: WasmList> HostResults for R {
    type List = R;
    fn into_results(self) -> Result<R> {
        Ok(self)
    }
}

impl<R: WasmList> HostResults for Result<R> {
    type List = R;
    fn into_results(self) -> Result<R> {
        self
    }
}

/// A closure [`HostFunc::wrap`] takes: `Fn(&mut Caller, A, B, ...) -> R` or
/// `Fn(A, B, ...) -> R`, with up to 8 [`WasmTy`] parameters and [`HostResults`]. The
/// type parameter only tells the two shapes apart; callers never name it.
pub trait IntoHostFunc<Shape>: Send + Sync + 'static {
    /// The function's WebAssembly type.
    fn func_type() -> FuncType;
    /// Calls it with checked arguments, writing its results.
    fn call(&self, caller: &mut Caller<'_>, args: &[Val], results: &mut [Val]) -> Result<()>;
}

/// The shape of closures that take the [`Caller`] first.
pub struct WithCaller<P, R>(std::marker::PhantomData<fn(P) -> R>);
/// The shape of closures that do not take the [`Caller`].
pub struct WithoutCaller<P, R>(std::marker::PhantomData<fn(P) -> R>);

macro_rules! into_host_func {
    ($($t:ident $i:tt),*) => {
        impl<Func, Res, $($t: WasmTy),*> IntoHostFunc<WithCaller<($($t,)*), Res>> for Func
        where
            Func: Fn(&mut Caller<'_>, $($t),*) -> Res + Send + Sync + 'static,
            Res: HostResults,
        {
            fn func_type() -> FuncType {
                FuncType { params: <($($t,)*)>::kinds(), results: Res::List::kinds() }
            }
            #[allow(unused_variables)]
            fn call(&self, caller: &mut Caller<'_>, args: &[Val], results: &mut [Val]) -> Result<()> {
                let args = <($($t,)*)>::read(args).ok_or_else(|| anyhow!("arguments of the wrong types"))?;
                self(caller, $(args.$i),*).into_results()?.write(results);
                Ok(())
            }
        }

        impl<Func, Res, $($t: WasmTy),*> IntoHostFunc<WithoutCaller<($($t,)*), Res>> for Func
        where
            Func: Fn($($t),*) -> Res + Send + Sync + 'static,
            Res: HostResults,
        {
            fn func_type() -> FuncType {
                FuncType { params: <($($t,)*)>::kinds(), results: Res::List::kinds() }
            }
            #[allow(unused_variables)]
            fn call(&self, _caller: &mut Caller<'_>, args: &[Val], results: &mut [Val]) -> Result<()> {
                let args = <($($t,)*)>::read(args).ok_or_else(|| anyhow!("arguments of the wrong types"))?;
                self($(args.$i),*).into_results()?.write(results);
                Ok(())
            }
        }
    };
}

into_host_func!();
into_host_func!(A 0);
into_host_func!(A 0, B 1);
into_host_func!(A 0, B 1, C 2);
into_host_func!(A 0, B 1, C 2, D 3);
into_host_func!(A 0, B 1, C 2, D 3, E 4);
into_host_func!(A 0, B 1, C 2, D 3, E 4, F 5);
into_host_func!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
into_host_func!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

impl HostFunc {
    /// A host function `module::name` from a closure whose parameter and result types
    /// give its WebAssembly type:
    ///
    /// ```
    /// use wasithreads::{Caller, HostFunc};
    /// let add = HostFunc::wrap("env", "add", |a: i32, b: i32| a.wrapping_add(b));
    /// let log = HostFunc::wrap("env", "log", |c: &mut Caller<'_>, ptr: u32, len: u32| -> anyhow::Result<()> {
    ///     let mut text = vec![0; len as usize];
    ///     c.read(u64::from(ptr), &mut text)?;
    ///     println!("thread {}: {}", c.tid(), String::from_utf8_lossy(&text));
    ///     Ok(())
    /// });
    /// assert_eq!(add.ty.to_string(), "(i32, i32) -> i32");
    /// assert_eq!(log.ty.to_string(), "(i32, i32) -> ()");
    /// ```
    ///
    /// It runs on the calling guest thread, concurrently with its other calls. An `Err`
    /// (or a panic) traps that thread, which ends its run or instance with the message.
    pub fn wrap<Shape>(module: &str, name: &str, func: impl IntoHostFunc<Shape>) -> HostFunc {
        fn make<Shape, F: IntoHostFunc<Shape>>(module: &str, name: &str, func: F) -> HostFunc {
            let ty = F::func_type();
            HostFunc::new(module, name, &ty.params, &ty.results, move |caller, args, results| {
                func.call(caller, args, results)
            })
        }
        make(module, name, func)
    }
}
