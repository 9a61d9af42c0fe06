/**
 * Pure builders for reaching a Windows target: command lines, the task XML, PowerShell lines,
 * and parsers for their output. Nothing here runs anything (README.md beside this file).
 */
export * from './cmd-line.ts';
export * from './task-xml.ts';
export * from './schtasks.ts';
export * from './powershell.ts';
export * from './shutdown.ts';
export * from './agent-launch.ts';
