// esbuild bundles imported CSS into app.css; to TypeScript such an import is a side effect with no value.
declare module '*.css';
