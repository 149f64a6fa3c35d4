@echo off
rem Started by the scheduled task "schoolnet-agent" (schoolnet-agent.task.xml) as SYSTEM.
rem Task Scheduler throws a task's output away, so the agent's log (stderr) is appended to
rem agent.log in the state directory; at each start a log past 10 MB becomes agent.log.1.
setlocal
set "SCHOOLNET_LOG=%ProgramData%\schoolnet-agent\agent.log"
if exist "%SCHOOLNET_LOG%" for %%F in ("%SCHOOLNET_LOG%") do if %%~zF GTR 10485760 move /y "%SCHOOLNET_LOG%" "%SCHOOLNET_LOG%.1" >nul
"%ProgramFiles%\schoolnet-agent\Scripts\schoolnet-agent.exe" --config "%ProgramData%\schoolnet\agent.toml" run >> "%SCHOOLNET_LOG%" 2>&1
exit /b %ERRORLEVEL%
