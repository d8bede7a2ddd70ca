// The package's own typings omit the options argument it accepts.
declare module 'fast-json-stable-stringify' {
  interface Options {
    cmp?: (a: { key: string; value: unknown }, b: { key: string; value: unknown }) => number;
    cycles?: boolean;
  }
  function stringify(value: unknown, options?: Options): string;
  export default stringify;
}
