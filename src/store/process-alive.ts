/** True when process `pid` exists (signal 0; EPERM means it exists but is not ours). Lock files use it to spot a dead owner. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
