/** Counts model calls in progress, for the status bar; release is idempotent so every exit path may call it. */
export class InflightCounter {
  private count = 0

  constructor(private readonly onChange: (count: number) => void = () => {}) {}

  get value(): number {
    return this.count
  }

  acquire(): () => void {
    this.count++
    this.onChange(this.count)
    let released = false
    return () => {
      if (released) return
      released = true
      this.count--
      this.onChange(this.count)
    }
  }
}
