"""Live supervision (监听 / 耳语 / 强插): a supervisor's own softphone joins an agent's call through
Asterisk's ChanSpy, set up by the engine as the narrow supervise AMI user (docs/supervision.md)."""
