// negotiator ships no types; the gateway uses the one method Apollo Server uses of it, to pick the same way.
declare module 'negotiator' {
  export default class Negotiator {
    constructor(request: { headers: { accept?: string | undefined } });
    mediaType(available: string[]): string | undefined;
  }
}
