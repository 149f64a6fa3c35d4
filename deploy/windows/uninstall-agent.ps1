#Requires -Version 5.1
<#
.SYNOPSIS
Removes the schoolnet agent: the same as install-agent.ps1 -Uninstall (one place does the work).

.PARAMETER Purge
Also delete the configuration (%ProgramData%\schoolnet\agent.toml) and the state directory
(%ProgramData%\schoolnet-agent: credential, outbox, log).
#>
[CmdletBinding()]
param(
    [switch] $Purge
)
$ErrorActionPreference = 'Stop'
& (Join-Path $PSScriptRoot 'install-agent.ps1') -Uninstall -Purge:$Purge
exit $LASTEXITCODE
