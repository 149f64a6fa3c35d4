#Requires -Version 5.1
<#
.SYNOPSIS
Installs the schoolnet agent on Windows as a scheduled task running as SYSTEM, or removes it.

.DESCRIPTION
Creates a virtual environment under %ProgramFiles%\schoolnet-agent, installs schoolnet into it,
writes %ProgramData%\schoolnet\agent.toml when it is absent (an edited one is never
overwritten), enrols the agent with its collector unless it is already enrolled, registers the
scheduled task "schoolnet-agent" (schoolnet-agent.task.xml beside this script) and starts it.
Running it again with the same arguments changes nothing and succeeds; with a newer -Version
it upgrades the agent in place. Run it from an elevated PowerShell (Run as administrator).
docs/windows.md explains every step.

.PARAMETER Collector
The collector's base URL, e.g. https://collector.example.org. Needed, with -Code, until the
agent is enrolled.

.PARAMETER Code
The enrolment code printed by 'schoolnet-collector enroll-code' on the collector.

.PARAMETER Name
This agent's name at the collector (default: the computer's name).

.PARAMETER Version
The schoolnet version to install from PyPI (default: the version this script belongs to).

.PARAMETER From
Install from this path instead of PyPI: a wheel file or a source checkout.

.PARAMETER Python
The python.exe (3.11 or newer, installed for all users) to build the environment with
(default: the newest Python 3 the py launcher knows).

.PARAMETER NoStart
Register the task but do not start it now (it starts at the next boot).

.PARAMETER Uninstall
Stop and remove the task and the program folder; the configuration and the state directory
(credential and outbox) are kept unless -Purge is given.

.PARAMETER Purge
With -Uninstall: also delete the configuration and the state directory.

.EXAMPLE
.\install-agent.ps1 -Collector https://collector.example.org -Code K7Q2-9XPD

.EXAMPLE
.\install-agent.ps1 -Uninstall -Purge
#>
[CmdletBinding(DefaultParameterSetName = 'Install')]
param(
    [Parameter(ParameterSetName = 'Install')] [string] $Collector,
    [Parameter(ParameterSetName = 'Install')] [string] $Code,
    [Parameter(ParameterSetName = 'Install')] [string] $Name,
    [Parameter(ParameterSetName = 'Install')] [string] $Version = '0.1.0',
    [Parameter(ParameterSetName = 'Install')] [string] $From,
    [Parameter(ParameterSetName = 'Install')] [string] $Python,
    [Parameter(ParameterSetName = 'Install')] [switch] $NoStart,
    [Parameter(ParameterSetName = 'Uninstall', Mandatory = $true)] [switch] $Uninstall,
    [Parameter(ParameterSetName = 'Uninstall')] [switch] $Purge
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ScriptName = 'install-agent.ps1'

# The same places as agent/paths.py's Windows defaults (tests/test_windows_install.py checks).
$InstallDir = Join-Path $env:ProgramFiles 'schoolnet-agent'
$ConfigDir = Join-Path $env:ProgramData 'schoolnet'
$ConfigFile = Join-Path $ConfigDir 'agent.toml'
$StateDir = Join-Path $env:ProgramData 'schoolnet-agent'
$CredentialFile = Join-Path $StateDir 'credential.json'
$LogFile = Join-Path $StateDir 'agent.log'
$VenvPython = Join-Path $InstallDir 'Scripts\python.exe'
$AgentExe = Join-Path $InstallDir 'Scripts\schoolnet-agent.exe'
$TaskName = 'schoolnet-agent'
$TaskXml = Join-Path $PSScriptRoot 'schoolnet-agent.task.xml'
$RunnerSource = Join-Path $PSScriptRoot 'run-agent.cmd'
$Runner = Join-Path $InstallDir 'run-agent.cmd'
$MinimumPython = [version]'3.11'

# Only the machine's own accounts, by SID (names differ per Windows language): the
# credential and any SNMP or UniFi password in the config must not be readable by pupils.
$SystemSid = '*S-1-5-18'
$AdministratorsSid = '*S-1-5-32-544'

$AgentConfigText = @'
# schoolnet agent configuration, written by install-agent.ps1 (it never overwrites this file).
# Every key has a default; every option is explained in deploy/agent/agent.example.toml.
# Save it as UTF-8 without a byte order mark: the agent refuses a file that starts with one.
# The state directory (credential, outbox, log) is %ProgramData%\schoolnet-agent.

# room = "B 204"

[probes.connectivity]
# Not on Windows yet: the agent's echo prober waits with poll() and times answers with
# recvmsg(), neither of which Python has here. Outages and latency come from the school's
# Linux agents (a Raspberry Pi); this PC measures bandwidth, Wi-Fi and its own health.
enabled = false

[probes.users]
# The default census sources (neighbours, arp, passive) read Linux kernel interfaces. On
# Windows count devices with sources = ["snmp"] (the router), ["unifi"] or ["bss_load"]
# (the school's access points this PC hears), configure that source, and set enabled = true.
enabled = false
'@

function Fail([string] $Message) {
    [Console]::Error.WriteLine("${ScriptName}: error: $Message")
    exit 1
}

function Say([string] $Message) {
    Write-Host "${ScriptName}: $Message"
}

# Any error nobody expected still ends as one line and exit 1, not a red wall of text.
trap {
    Fail $_.Exception.Message
}

function Invoke-Native([string] $FilePath, [string[]] $Arguments) {
    # PowerShell 5.1 turns a native program's stderr into errors, which 'Stop' would make
    # fatal before the exit code could be read: collect everything as text instead.
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $output = @(& $FilePath @Arguments 2>&1 | ForEach-Object { "$_" })
        $code = $LASTEXITCODE
    } finally {
        $ErrorActionPreference = $previous
    }
    [pscustomobject]@{ ExitCode = $code; Output = $output }
}

function Get-LastLine($Result) {
    $lines = @($Result.Output | Where-Object { $_.Trim() -ne '' })
    if ($lines.Count -eq 0) { return "exit code $($Result.ExitCode)" }
    return $lines[-1].Trim()
}

function Assert-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal($identity)
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        Fail 'this needs an elevated PowerShell: right-click PowerShell, "Run as administrator", and run it again'
    }
}

function Assert-NativeBitness {
    # A 32-bit PowerShell on 64-bit Windows sees "Program Files (x86)" as %ProgramFiles%,
    # but the task (a 64-bit cmd.exe) looks in "Program Files".
    if ([Environment]::Is64BitOperatingSystem -and -not [Environment]::Is64BitProcess) {
        Fail 'this is the 32-bit PowerShell: run the 64-bit one (C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe)'
    }
}

function Find-Python {
    if ($Python) {
        if (-not (Test-Path -LiteralPath $Python -PathType Leaf)) { Fail "-Python ${Python}: no such file" }
        $command = $Python
        $prefix = @()
    } else {
        if (-not (Get-Command 'py.exe' -ErrorAction SilentlyContinue)) {
            Fail 'no py launcher: install Python 3.11 or newer from python.org with "Install for all users" and the py launcher, or give -Python C:\path\to\python.exe'
        }
        $command = 'py.exe'
        $prefix = @('-3')
    }
    $probe = Invoke-Native $command ($prefix + @('-c', 'import sys; print(sys.version_info[0], sys.version_info[1]); print(sys.executable); print(sys.base_prefix)'))
    if ($probe.ExitCode -ne 0 -or $probe.Output.Count -lt 3) {
        Fail "cannot run Python 3 ($command): $(Get-LastLine $probe)"
    }
    $found = [version]($probe.Output[0].Trim() -replace ' ', '.')
    $executable = $probe.Output[1].Trim()
    $basePrefix = $probe.Output[2].Trim()
    if ($found -lt $MinimumPython) {
        Fail "Python $found found at ${executable}: the agent needs Python $MinimumPython or newer (python.org, Install for all users)"
    }
    # SYSTEM cannot use a Python installed for one user (in that user's profile) or the
    # Microsoft Store's Python (an app package): the venv would point at it.
    $profiles = Split-Path -Parent $env:USERPROFILE
    if ($basePrefix -like "$profiles\*" -or $basePrefix -like '*\WindowsApps\*') {
        Fail "Python at $basePrefix is installed for one user only; install Python $MinimumPython+ from python.org with ""Install for all users"" (it goes to Program Files), or give -Python"
    }
    Say "Python $found at $executable"
    return $executable
}

function Install-Venv([string] $BasePython) {
    if (Test-Path -LiteralPath $VenvPython) {
        $check = Invoke-Native $VenvPython @('-c', 'import sys; print(sys.version_info[0], sys.version_info[1])')
        if ($check.ExitCode -eq 0) {
            Say "environment $InstallDir exists"
            return
        }
        # Its base Python was removed or upgraded away: build it afresh.
        Say "environment $InstallDir is broken ($(Get-LastLine $check)); recreating it"
        Remove-Item -LiteralPath $InstallDir -Recurse -Force
    }
    $made = Invoke-Native $BasePython @('-m', 'venv', $InstallDir)
    if ($made.ExitCode -ne 0) { Fail "cannot create the environment ${InstallDir}: $(Get-LastLine $made)" }
    Say "created environment $InstallDir"
}

function Install-Agent {
    if ($From) {
        if (-not (Test-Path -LiteralPath $From)) { Fail "-From ${From}: no such file or folder" }
        $spec = (Resolve-Path -LiteralPath $From).Path
    } else {
        if ($Version -notmatch '^[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)$') { Fail "-Version ${Version}: not a version number" }
        $spec = "schoolnet==$Version"
    }
    $pip = Invoke-Native $VenvPython @('-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--upgrade', $spec)
    if ($pip.ExitCode -ne 0) { Fail "pip install $spec failed: $(Get-LastLine $pip)" }
    $version = Invoke-Native $AgentExe @('--version')
    if ($version.ExitCode -ne 0) { Fail "the installed agent does not start: $(Get-LastLine $version)" }
    Copy-Item -LiteralPath $RunnerSource -Destination $Runner -Force
    Say "installed $(Get-LastLine $version)"
}

function New-PrivateDirectory([string] $Path) {
    if (-not (Test-Path -LiteralPath $Path)) {
        New-Item -ItemType Directory -Path $Path | Out-Null
    }
    # Replace what ProgramData hands down (Users may read) with SYSTEM and Administrators only.
    $acl = Invoke-Native 'icacls.exe' @($Path, '/inheritance:r', '/grant:r', "${SystemSid}:(OI)(CI)F", "${AdministratorsSid}:(OI)(CI)F", '/T', '/Q')
    if ($acl.ExitCode -ne 0) { Fail "cannot restrict access to ${Path}: $(Get-LastLine $acl)" }
}

function Write-AgentConfig {
    if (Test-Path -LiteralPath $ConfigFile) {
        Say "config $ConfigFile exists; left as it is"
        return
    }
    # Not Set-Content: PowerShell 5.1's UTF8 writes a byte order mark, which TOML forbids.
    [IO.File]::WriteAllText($ConfigFile, ($AgentConfigText -replace "`r?`n", "`r`n"), (New-Object Text.UTF8Encoding($false)))
    Say "wrote $ConfigFile"
}

function Register-AgentEnrolment {
    if (Test-Path -LiteralPath $CredentialFile) {
        Say "already enrolled ($CredentialFile); -Collector and -Code are not needed again"
        return
    }
    if (-not $Collector -or -not $Code) {
        Fail 'not enrolled yet: give -Collector URL and -Code CODE (from schoolnet-collector enroll-code)'
    }
    $arguments = @('--config', $ConfigFile, 'enroll', '--collector', $Collector, '--code', $Code)
    if ($Name) { $arguments += @('--name', $Name) }
    $enrolled = Invoke-Native $AgentExe $arguments
    if ($enrolled.ExitCode -ne 0) { Fail "enrolment failed: $(Get-LastLine $enrolled)" }
    if (-not (Test-Path -LiteralPath $CredentialFile)) {
        Fail "enrolment reported success but wrote no $CredentialFile"
    }
    Say "enrolled with $Collector"
}

function Stop-AgentTask {
    $task = Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
    if ($task -and $task.State -eq 'Running') {
        # Windows locks a running program's files: pip could not replace them.
        Stop-ScheduledTask -TaskName $TaskName
        Say 'stopped the running agent'
    }
    return $task
}

function Register-AgentTask {
    if (-not (Test-Path -LiteralPath $TaskXml)) { Fail "$TaskXml is missing: run the script from its folder in the schoolnet source" }
    $xml = [IO.File]::ReadAllText($TaskXml)
    Register-ScheduledTask -TaskName $TaskName -Xml $xml -Force | Out-Null
    Say "registered the scheduled task $TaskName (SYSTEM, at startup, restarted when it stops)"
}

function Start-AgentTask {
    Start-ScheduledTask -TaskName $TaskName
    Start-Sleep -Seconds 5
    $task = Get-ScheduledTask -TaskName $TaskName
    if ($task.State -ne 'Running') {
        $info = Get-ScheduledTaskInfo -TaskName $TaskName
        Fail "the agent stopped at once (last result $($info.LastTaskResult)); see $LogFile"
    }
    Say "the agent is running; its log is $LogFile"
}

function Test-LocationConsent {
    # Windows 11 24H2 (build 26100) and later withhold Wi-Fi details from programs unless
    # Location is allowed; the agent still measures the line, but reads no Wi-Fi.
    $build = [Environment]::OSVersion.Version.Build
    if ($build -lt 26100) { return }
    $key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\CapabilityAccessManager\ConsentStore\location'
    $value = (Get-ItemProperty -Path $key -Name Value -ErrorAction SilentlyContinue).Value
    if ($value -ne 'Allow') {
        Write-Warning ('Location services are off on this PC, so Windows gives the agent no Wi-Fi readings: ' +
            'Settings > Privacy & security > Location: switch on "Location services" and ' +
            '"Let desktop apps access your location" (docs/windows.md)')
    }
}

function Invoke-Uninstall {
    $task = Stop-AgentTask
    if ($task) {
        Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
        Say "removed the scheduled task $TaskName"
    }
    if (Test-Path -LiteralPath $InstallDir) {
        Remove-Item -LiteralPath $InstallDir -Recurse -Force
        Say "removed $InstallDir"
    }
    if ($Purge) {
        foreach ($path in @($StateDir, $ConfigFile)) {
            if (Test-Path -LiteralPath $path) {
                Remove-Item -LiteralPath $path -Recurse -Force
                Say "removed $path"
            }
        }
        if ((Test-Path -LiteralPath $ConfigDir) -and -not (Get-ChildItem -LiteralPath $ConfigDir -Force)) {
            Remove-Item -LiteralPath $ConfigDir -Force
        }
    } else {
        Say "kept $ConfigFile and $StateDir (credential, outbox, log); -Purge deletes them"
    }
    Say 'uninstalled'
}

Assert-Administrator
Assert-NativeBitness
if ($Uninstall) {
    Invoke-Uninstall
    exit 0
}
$basePython = Find-Python
New-PrivateDirectory $ConfigDir
New-PrivateDirectory $StateDir
Write-AgentConfig
$null = Stop-AgentTask
Install-Venv $basePython
Install-Agent
Register-AgentEnrolment
Register-AgentTask
Test-LocationConsent
if ($NoStart) {
    Say "not started (-NoStart); it starts at the next boot, or now with: Start-ScheduledTask -TaskName $TaskName"
} else {
    Start-AgentTask
}
Say "status: & '$AgentExe' --config '$ConfigFile' status"
exit 0
