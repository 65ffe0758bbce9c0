// The slice of Bun's globals the Bun entry uses (bun-types would redefine Node's globals).
declare const Bun: {
  file(path: string): Blob & { exists(): Promise<boolean> }
  serve(options: { port: number; hostname: string; fetch: (req: Request, server: unknown) => Response | Promise<Response>; idleTimeout?: number; websocket?: unknown }): { port: number; stop(closeActive?: boolean): void }
}
interface ImportMeta {
  dir: string
}
